"""Fixtures for the replay tests: a pika helper on a scratch vhost."""

import pytest

from tests.replay.helpers import Broker


@pytest.fixture
def broker(scratch_vhost):
    helper = Broker(scratch_vhost)
    yield helper
    helper.close()
