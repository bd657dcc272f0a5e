"""Fixtures of the live tests."""

import pytest
from django.contrib.auth.models import Group


@pytest.fixture
def roles(transactional_db):
    """The role groups, which a transactional test's flush removes with every table."""
    for name in ("viewer", "operator"):
        Group.objects.get_or_create(name=name)
