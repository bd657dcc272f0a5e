"""An admin (the group, not a superuser), broker users and vhosts made for one test."""

import contextlib
import uuid
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from console.models import AuditEntry
from rabbit.administration import Administration
from rabbit.management_http import BrokerNotFound


@pytest.fixture
def administrator(db) -> User:
    user = User.objects.create_user(username="ada-admin", password="pw-" + uuid.uuid4().hex)
    user.groups.add(Group.objects.get_or_create(name="admin")[0])
    return user


@pytest.fixture
def admin_group_client(client: Client, administrator: User) -> Client:
    client.force_login(administrator)
    return client


def unique(prefix: str) -> str:
    return f"warren-test-{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def broker_user(broker_admin: Administration) -> Iterator[str]:
    """A broker user made for this test (password login), deleted afterwards."""
    name = unique("user")
    broker_admin.create_user(name, "secret-" + uuid.uuid4().hex, ["monitoring"])
    yield name
    with contextlib.suppress(BrokerNotFound):
        broker_admin.delete_user(name)


def last_entry(action: str) -> AuditEntry:
    return AuditEntry.objects.filter(action=action).latest("id")
