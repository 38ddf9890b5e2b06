"""Test the accounts that log in to the admin: the administrator, the staff group, the password."""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from identity import passwords
from identity.accounts import ADMIN_EMAIL, STAFF_GROUP, staff_emails
from identity.models import OutboxEvent, Queue, User

Run = Callable[..., tuple[str, str]]
Seed = Callable[..., dict[str, Any]]
SERVICES = Path(__file__).resolve().parents[3]
PASSWORD = "admin-test-password"


@pytest.fixture
def known_password(monkeypatch: pytest.MonkeyPatch) -> str:
    """Seed with a known password."""
    monkeypatch.setenv("SEED_USER_PASSWORD", PASSWORD)
    return PASSWORD


def admin_page(email: str, password: str) -> Client:
    """Log in through the admin's login form (its first field gets the email); return the client."""
    client = Client()
    response = client.post("/admin/login/", {"username": email, "password": password, "next": "/admin/"})
    assert response.status_code == 302, "the admin login form refused the seeded credentials"
    assert response["Location"] == "/admin/"
    return client


@pytest.mark.django_db
def test_seed_twice_creates_one_superuser_admin(seed_json: Seed, known_password: str) -> None:
    first = seed_json()
    assert first["counts"]["User"] == 14
    assert first["models"]["User"]["created"] == 14
    second = seed_json()
    assert second["changed"] is False
    assert second["models"]["User"] == {"created": 0, "updated": 0, "unchanged": 14, "repaired": 0, "kept": 0}
    admin = User.objects.get(email=ADMIN_EMAIL)
    assert (admin.is_superuser, admin.is_staff, admin.is_active) == (True, True, True)
    assert not admin.system_roles.exists()
    assert User.objects.filter(email=ADMIN_EMAIL).count() == 1
    assert User.objects.count() == 14


@pytest.mark.django_db
def test_admin_logs_in_to_the_admin_site(run: Run, known_password: str) -> None:
    run("seed")
    client = Client()
    assert client.login(username=ADMIN_EMAIL, password=known_password)
    assert client.get("/admin/").status_code == 200
    page = admin_page(ADMIN_EMAIL, known_password).get("/admin/identity/user/")
    assert page.status_code == 200
    assert ADMIN_EMAIL in page.content.decode()


@pytest.mark.django_db
def test_admin_uses_the_generated_password_file(run: Run, isolated_passwords: Path) -> None:
    run("seed")
    password = isolated_passwords.read_text(encoding="utf-8").strip()
    assert Client().login(username=ADMIN_EMAIL, password=password)
    assert User.objects.get(email="adminhdts@example.com").check_password(password)


@pytest.mark.django_db
def test_the_admin_is_never_synced(run: Run) -> None:
    run("seed")
    admin = User.objects.get(email=ADMIN_EMAIL)
    assert not OutboxEvent.objects.filter(queue=Queue.HDTS_USER, entity_id=admin.pk).exists()
    assert not any(event.payload.get("email") == ADMIN_EMAIL for event in OutboxEvent.objects.all())
    state = json.loads(run("stack_state", "--json")[0])
    assert state["integrity"] == {"ok": True, "problems": []}
    assert state["pending_events"]["hdts.user.sync"] == 6


@pytest.mark.django_db
def test_a_person_s_edits_of_the_admin_are_kept_until_repair(
    run: Run, seed_json: Seed, known_password: str
) -> None:
    run("seed")
    admin = User.objects.get(email=ADMIN_EMAIL)
    admin.set_password("chosen-by-a-person")
    admin.is_superuser = False
    admin.save()
    assert seed_json()["models"]["User"]["kept"] == 1
    admin.refresh_from_db()
    assert admin.check_password("chosen-by-a-person") and not admin.is_superuser
    assert json.loads(run("stack_state", "--json", "--edits")[0])["seeded"]["User"]["edited"] == 1

    assert seed_json("--repair")["models"]["User"]["repaired"] == 1
    admin.refresh_from_db()
    assert admin.check_password(known_password) and admin.is_superuser

    admin.set_password("chosen-again")
    admin.save()
    assert seed_json()["changed"] is False, "a new password alone is a person's edit, kept"
    repaired = seed_json("--repair")
    assert repaired["models"]["User"]["repaired"] == 1
    assert Client().login(username=ADMIN_EMAIL, password=known_password)
    assert seed_json("--repair")["changed"] is False


@pytest.mark.django_db
def test_stack_state_counts_the_admin_as_a_seeded_user(run: Run) -> None:
    run("seed")
    state = json.loads(run("stack_state", "--json")[0])
    assert state["counts"]["User"] == 14
    assert state["seeded"]["User"] == {"expected": 14, "missing": 0, "extra": 0}
    User.objects.filter(email=ADMIN_EMAIL).delete()
    state = json.loads(run("stack_state", "--json")[0])
    assert state["seeded"]["User"] == {"expected": 14, "missing": 1, "extra": 0}
    run("seed")
    assert User.objects.get(email=ADMIN_EMAIL).is_superuser


@pytest.mark.django_db
def test_staff_users_get_the_staff_group(run: Run) -> None:
    run("seed")
    out, _ = run("seed")
    group = Group.objects.get(name=STAFF_GROUP)
    staff = set(User.objects.filter(is_staff=True, is_superuser=False).values_list("email", flat=True))
    assert staff == set(staff_emails())
    assert len(staff) == 7
    assert set(group.user_set.values_list("email", flat=True)) == staff
    assert group.permissions.count() == 12
    assert "Nothing to do" in out
    assert Group.objects.count() == 1
    user = User.objects.get(email="adminhdts@example.com")
    assert user.has_perm("identity.change_user") and user.has_perm("identity.view_employee")
    assert not user.has_perm("identity.delete_user")
    coordinator = User.objects.get(email="carlo.garcia@example.com")
    assert not coordinator.is_staff and not coordinator.groups.exists()


@pytest.mark.django_db
def test_a_seeded_staff_user_sees_models_in_the_admin(run: Run, known_password: str) -> None:
    run("seed")
    client = admin_page("adminhdts@example.com", known_password)
    index = client.get("/admin/")
    assert index.status_code == 200
    apps = {app["app_label"]: app for app in index.context["available_apps"]}
    names = {model["object_name"] for model in apps["identity"]["models"]}
    assert {"System", "Role", "User", "UserSystemRole", "Employee"} <= names
    assert client.get("/admin/identity/employee/").status_code == 200
    assert client.get("/admin/auth/group/").status_code == 403
    coordinator = Client()
    assert coordinator.login(username="carlo.garcia@example.com", password=known_password)
    assert coordinator.get("/admin/").status_code == 302, "coordinators are not staff in auth"


@pytest.mark.django_db
def test_a_deleted_group_member_comes_back(run: Run) -> None:
    run("seed")
    group = Group.objects.get(name=STAFF_GROUP)
    group.user_set.remove(User.objects.get(email="maria.santos@example.com"))
    person = User.objects.create(email="pat@example.com", username="pat")
    group.user_set.add(person)
    out, _ = run("seed")
    assert "1 staff members added" in out
    assert group.user_set.count() == 8, "people's members stay"


# --- the password file of the checkout ------------------------------------------------------


def other_copy(service: str, package: str) -> ModuleType:
    """Load another service's copy of passwords.py as a module of its own."""
    path = SERVICES / service / package / "passwords.py"
    if not path.exists():
        pytest.skip(f"{path} is not in this checkout")
    spec = importlib.util.spec_from_file_location(f"{service}_passwords_copy", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Any) -> Path:
    """Make a temporary checkout root, with the seed password left to its file."""
    monkeypatch.delenv("SEED_USER_PASSWORD", raising=False)
    monkeypatch.delenv("SEED_PASSWORD_FILE", raising=False)
    root = tmp_path / "checkout"
    (root / "services" / "auth").mkdir(parents=True)
    settings.BASE_DIR = root / "services" / "auth"
    return root


def test_every_service_reads_one_password_file(checkout: Path, settings: Any) -> None:
    mine = passwords.seed_password()
    shared = checkout / ".devstack" / "seed-password"
    assert shared.read_text(encoding="utf-8").strip() == mine
    if os.name == "posix":
        assert stat.S_IMODE(shared.stat().st_mode) == 0o600
    assert not (checkout / "services" / "auth" / ".seed-password").exists()
    for service, package in (("workflow", "workflows"), ("helpdesk", "helpdesk")):
        settings.BASE_DIR = checkout / "services" / service
        assert other_copy(service, package).seed_password() == mine
    assert passwords.seed_password() == mine


def test_the_copies_are_identical() -> None:
    mine = Path(passwords.__file__).read_bytes()
    for service, package in (("workflow", "workflows"), ("helpdesk", "helpdesk")):
        path = SERVICES / service / package / "passwords.py"
        if path.exists():
            assert path.read_bytes() == mine, f"{path} drifted from identity/passwords.py"


def test_parallel_seeds_agree_on_one_password(checkout: Path) -> None:
    path = checkout / ".devstack" / "seed-password"
    barrier = threading.Barrier(8)
    found: list[tuple[str, bool]] = []

    def create() -> None:
        barrier.wait()
        found.append(passwords.read_or_create_password(path))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({password for password, _ in found}) == 1
    assert sum(created for _, created in found) == 1


def test_a_legacy_service_password_is_adopted(checkout: Path) -> None:
    (checkout / "services" / "helpdesk").mkdir()
    (checkout / "services" / "helpdesk" / ".seed-password").write_text("helpdesk-old\n", encoding="utf-8")
    (checkout / "services" / "auth" / ".seed-password").write_text("auth-old\n", encoding="utf-8")
    assert passwords.seed_password() == "auth-old"
    assert (checkout / ".devstack" / "seed-password").read_text(encoding="utf-8") == "auth-old\n"
    (checkout / "services" / "auth" / ".seed-password").write_text("changed\n", encoding="utf-8")
    assert passwords.seed_password() == "auth-old", "adopted once, then the shared file rules"


def test_an_empty_password_file_is_refused(checkout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "WRITE_WAIT_SECONDS", 0.1)
    shared = checkout / ".devstack" / "seed-password"
    shared.parent.mkdir()
    shared.write_text("\n", encoding="utf-8")
    with pytest.raises(passwords.SeedPasswordError, match="is empty; delete it"):
        passwords.seed_password()


def test_the_env_password_wins(checkout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEED_USER_PASSWORD", "from-env")
    assert passwords.seed_password() == "from-env"
    assert not (checkout / ".devstack").exists()
