"""Record outbox events for ORM saves and deletes of synced models.

Saves run inside a transaction (see `AtomicSaveMixin`) and deletes inside the
collector's, so each event is written in the transaction of its change. Bulk
writes fire no signals: the seeders call `outbox.record_changes` themselves.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

from . import outbox
from .models import Employee, Role, System, User, UserSystemRole

KEYS_ATTR = "_outbox_keys"
NON_SYNCED_USER_FIELDS = frozenset({"last_login", "password"})


def keys_for(instance: Model) -> outbox.Keys:
    """Return the synced entities that depend on this row."""
    pk = instance.pk
    if isinstance(instance, System):
        return outbox.affected(systems=[pk])
    if isinstance(instance, Role):
        return outbox.affected(roles=[pk])
    if isinstance(instance, User):
        return outbox.affected(users=[pk])
    if isinstance(instance, UserSystemRole):
        return outbox.affected(links=[pk])
    if isinstance(instance, Employee):
        return outbox.Keys(employees={pk})
    return outbox.Keys()


def only_login_fields(instance: Model, update_fields: frozenset[str] | None) -> bool:
    """Tell whether a save touches only a user's login fields (never synced)."""
    return isinstance(instance, User) and bool(update_fields) and update_fields <= NON_SYNCED_USER_FIELDS


def remember_keys(sender: type[Model], instance: Model, raw: bool = False, **kwargs: Any) -> None:
    """Remember, before a save or delete, which entities depended on the old row."""
    if raw or instance.pk is None or only_login_fields(instance, kwargs.get("update_fields")):
        return
    setattr(instance, KEYS_ATTR, keys_for(instance))


def record_after_save(
    sender: type[Model],
    instance: Model,
    raw: bool = False,
    update_fields: frozenset[str] | None = None,
    **kwargs: Any,
) -> None:
    """Record events for a saved row (old and new dependants)."""
    if raw:
        return
    if only_login_fields(instance, update_fields):
        return
    keys: outbox.Keys = getattr(instance, KEYS_ATTR, None) or outbox.Keys()
    keys.update(keys_for(instance))
    outbox.record_changes(keys)
    if hasattr(instance, KEYS_ATTR):
        delattr(instance, KEYS_ATTR)


def record_after_delete(sender: type[Model], instance: Model, **kwargs: Any) -> None:
    """Record events for a deleted row, using the dependants remembered before."""
    keys: outbox.Keys | None = getattr(instance, KEYS_ATTR, None)
    if keys:
        outbox.record_changes(keys)
        delattr(instance, KEYS_ATTR)


def connect() -> None:
    """Connect the handlers for every model whose changes are synced."""
    for model in (System, Role, User, UserSystemRole, Employee):
        uid = f"identity-outbox-{model.__name__}"
        pre_save.connect(remember_keys, sender=model, dispatch_uid=f"{uid}-pre-save")
        post_save.connect(record_after_save, sender=model, dispatch_uid=f"{uid}-post-save")
        pre_delete.connect(remember_keys, sender=model, dispatch_uid=f"{uid}-pre-delete")
        post_delete.connect(record_after_delete, sender=model, dispatch_uid=f"{uid}-post-delete")
