"""Fixtures of the live tests."""

import threading

import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers
from django.contrib.auth.models import Group
from django.db import connections


@pytest.fixture
def roles(transactional_db):
    """The role groups, which a transactional test's flush removes with every table."""
    for name in ("viewer", "operator"):
        Group.objects.get_or_create(name=name)


def run_async(scenario, timeout=60.0):
    """Run the coroutine function `scenario` to its end on a thread of its own.

    The browser tests' Playwright keeps an event loop running in the main
    thread while their module runs, where async_to_sync cannot start another.
    Each scenario gets fresh channel layers: a layer's locks belong to the
    event loop that first used them, and every scenario runs in a new one.
    """
    channel_layers.backends = {}
    outcome = {}

    def target():
        try:
            outcome["value"] = async_to_sync(scenario)()
        except BaseException as error:  # noqa: BLE001 - raised again in the test's thread
            outcome["error"] = error
        finally:
            # The consumer's database calls ran on this thread: its connections
            # would otherwise keep the test database open after the run.
            connections.close_all()

    thread = threading.Thread(target=target, name="async scenario", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise AssertionError(f"the scenario did not finish within {timeout} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
