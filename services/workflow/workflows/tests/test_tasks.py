"""Test the Celery wiring of the sync consumer (eager mode, no broker)."""

import pytest
from config.celery_app import app as celery_app
from django.conf import settings

from workflows import tasks
from workflows.models import RoleUser

from .factories import link_event, role_event


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_celery")
def test_tasks_call_the_handler() -> None:
    role = role_event(2, "Admin")
    assert tasks.role_sync.delay(role).get() == "applied"
    assert tasks.role_sync.delay(role).get() == "duplicate"
    link = link_event(5, 2)
    assert tasks.user_system_role_sync.delay(link).get() == "applied"
    assert RoleUser.objects.filter(role_id=2, user_id=5).exists()


def test_tasks_are_named_routed_and_acked_late() -> None:
    celery_app.loader.import_default_modules()
    for task, queue in (
        (tasks.role_sync, "tts.role.sync"),
        (tasks.user_system_role_sync, "tts.user_system_role.sync"),
    ):
        registered = celery_app.tasks[queue]
        assert task.name == registered.name == queue
        assert registered.acks_late is True
        assert settings.CELERY_TASK_ROUTES[queue] == {"queue": queue}
    queues = {queue.name: queue for queue in settings.CELERY_TASK_QUEUES}
    assert set(queues) == {"tts.role.sync", "tts.user_system_role.sync"}
    assert all(queue.durable for queue in queues.values())
    assert all(queue.routing_key == name for name, queue in queues.items())
