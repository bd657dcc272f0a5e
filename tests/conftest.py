"""Fixtures shared by every test: users of each role and scratch vhosts on the real broker."""

import uuid

import pytest
from django.contrib.auth.models import Group, User

from console.brokers import default_broker


def _user(username, group=None, superuser=False):
    user = User.objects.create_user(username=username, password="pw-" + uuid.uuid4().hex)
    if superuser:
        user.is_superuser = True
        user.is_staff = True
        user.save()
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def viewer(db):
    return _user("vera-viewer", "viewer")


@pytest.fixture
def operator(db):
    return _user("otto-operator", "operator")


@pytest.fixture
def superuser(db):
    return _user("sam-super", superuser=True)


@pytest.fixture
def roleless(db):
    return _user("nora-norole")


def _logged_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def viewer_client(client, viewer):
    return _logged_in(client, viewer)


@pytest.fixture
def operator_client(client, operator):
    return _logged_in(client, operator)


@pytest.fixture
def admin_client(client, superuser):
    return _logged_in(client, superuser)


@pytest.fixture
def mgmt():
    """The management API client of the environment's broker."""
    return default_broker().client()


def unique_name(prefix="warren-test"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def scratch_vhost(mgmt):
    """A fresh vhost on the real broker, deleted after the test."""
    name = unique_name("warren-test-vhost")
    mgmt.create_vhost(name, description="Warren test scratch vhost")
    yield name
    mgmt.delete_vhost(name)
