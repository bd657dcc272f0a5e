"""Fixtures for the replay tests: a pika helper on a scratch vhost, roles after a flush."""

import uuid

import pytest

from tests.replay.helpers import Broker

ROLES = ("viewer", "operator")


@pytest.fixture(autouse=True)
def _roles_after_flush(request):
    """A transactional test empties every table when it ends, the role groups made by a
    migration included; the user fixtures need them back."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not marker.kwargs.get("transaction"):
        return
    request.getfixturevalue("transactional_db")
    from django.contrib.auth.models import Group

    for name in ROLES:
        Group.objects.get_or_create(name=name)


@pytest.fixture(autouse=True)
def _private_task_queue(settings):
    """Jobs a test starts go to a Celery queue of its own, never to the shared default."""
    from tests.replay.worker import forget_queue

    queue = f"warren-replay-test-{uuid.uuid4().hex[:10]}"
    settings.WARREN_REPLAY_QUEUE = queue
    yield
    forget_queue(queue)


@pytest.fixture
def broker(scratch_vhost):
    helper = Broker(scratch_vhost)
    yield helper
    helper.close()
