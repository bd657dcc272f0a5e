"""Helpers for the seed-workload tests: the broker's AMQP URL and a queue check that waits."""

import time

import pytest

from rabbit.brokers import default_amqp_url


@pytest.fixture
def amqp_url():
    return default_amqp_url()


def queues_left(mgmt, vhost, wait_s=5.0):
    """Queue names still in `vhost`, waiting a little for exclusive ones to go with their owners."""
    deadline = time.monotonic() + wait_s
    while True:
        names = sorted(queue["name"] for queue in mgmt.queues(vhost))
        if not names or time.monotonic() > deadline:
            return names
        time.sleep(0.2)
