"""Helpers for the seed-workload tests: the broker's AMQP URL and a queue check that waits."""

import pytest

from rabbit.brokers import default_amqp_url
from tests.polling import wait_until


@pytest.fixture
def amqp_url():
    return default_amqp_url()


def queues_left(mgmt, vhost, wait_s=5.0):
    """Queue names still in `vhost`: none, once exclusive ones have gone with their owners
    (the wait fails, naming those left, if some are still there after `wait_s`)."""
    return wait_until(
        lambda: sorted(queue["name"] for queue in mgmt.queues(vhost)),
        check=lambda names: not names,
        timeout=wait_s,
        interval=0.2,
        what=f"no queue left in {vhost!r}",
    )
