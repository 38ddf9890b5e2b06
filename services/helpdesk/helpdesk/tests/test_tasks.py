"""Test the Celery wiring: task names, routes, durable queues and eager runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from config.celery_app import app
from django.conf import settings

from helpdesk import tasks
from helpdesk.models import ExternalEmployee, HDTSUser

from .conftest import employee_payload, envelope, user_payload

QUEUES = ("hdts.user.sync", "hdts.employee.sync")


def test_tasks_are_named_after_queues_and_routed() -> None:
    assert tasks.sync_hdts_user.name == "hdts.user.sync"
    assert tasks.sync_hdts_employee.name == "hdts.employee.sync"
    for name in QUEUES:
        assert name in app.tasks
        assert app.tasks[name].acks_late is True
        assert settings.CELERY_TASK_ROUTES[name] == {"queue": name}
    queues = {queue.name: queue for queue in settings.CELERY_TASK_QUEUES}
    assert set(queues) == set(QUEUES)
    assert all(queue.durable for queue in queues.values())


def test_settings_follow_the_contract() -> None:
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 16
    assert app.conf.broker_connection_retry_on_startup is True
    assert app.main == "helpdesk"


@pytest.fixture
def eager() -> Iterator[None]:
    """Run tasks in the test process for the duration of a test."""
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = previous


@pytest.mark.django_db
@pytest.mark.usefixtures("eager")
def test_eager_tasks_apply_events() -> None:
    user_event = envelope("hdts.user.sync", "create", user_payload(4))
    assert tasks.sync_hdts_user.delay(user_event).get() == "applied"
    assert tasks.sync_hdts_user.delay(user_event).get() == "duplicate"
    employee_event = envelope("hdts.employee.sync", "create", employee_payload(4))
    assert tasks.sync_hdts_employee.delay(employee_event).get() == "applied"
    assert HDTSUser.objects.count() == 1
    assert ExternalEmployee.objects.count() == 1
