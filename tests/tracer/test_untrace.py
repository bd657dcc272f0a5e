"""The tap queue's bounds (messages and bytes), and `manage.py untrace`, on the real broker."""

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from rabbit.management_http import BrokerNotFound
from tests.polling import wait_until
from tests.tracer.tapping import TapProcess, client, tracing_on

pytestmark = pytest.mark.django_db(transaction=True)

QUEUE = "warren.tap"


def publish(vhost, count, body=b"x"):
    connection = client(vhost)
    channel = connection.channel()
    for index in range(count):
        channel.basic_publish("", "nowhere", body + b"%d" % index)
    connection.close()


def exists(mgmt, kind, vhost, name):
    try:
        (mgmt.queue if kind == "queue" else mgmt.exchange)(vhost, name)
    except BrokerNotFound:
        return False
    return True


def test_it_bounds_the_tap_queue_in_bytes_as_well_as_in_messages(scratch_vhost, mgmt):
    env = {"WARREN_TAP_QUEUE_MAX_LENGTH": "1000", "WARREN_TAP_QUEUE_MAX_BYTES": "20000"}
    with TapProcess(scratch_vhost, env=env):
        pass  # declares the bounded queue, switches tracing on
    arguments = mgmt.queue(scratch_vhost, QUEUE)["arguments"]
    assert arguments["x-max-length"] == 1000
    assert arguments["x-max-length-bytes"] == 20000
    publish(scratch_vhost, 50, body=b"y" * 2000)  # 100 kB of bodies, traced while no tap reads
    held = wait_until(
        lambda: mgmt.queue(scratch_vhost, QUEUE),
        # The broker reports a queue's count and its bytes in separate statistics
        # events: the count can show up a tick before the bytes do.
        check=lambda queue: (queue.get("messages") or 0) > 0 and "message_bytes" in queue,
        timeout=15.0,
        what="the tap queue's figures",
    )
    assert held["message_bytes"] <= 20000
    assert held["messages"] < 50


def test_it_switches_tracing_off_and_removes_warrens_queues(scratch_vhost, mgmt, capsys):
    with TapProcess(scratch_vhost):
        pass
    assert tracing_on(mgmt, scratch_vhost)
    publish(scratch_vhost, 3)
    wait_until(
        lambda: mgmt.queue(scratch_vhost, QUEUE).get("messages") == 3,
        timeout=15.0,
        what="3 trace events waiting",
    )
    call_command("untrace", scratch_vhost)
    out = capsys.readouterr().out
    assert f"{scratch_vhost}: removed queue '{QUEUE}' (3 messages)" in out
    assert ": off" in out
    assert not tracing_on(mgmt, scratch_vhost)
    assert not exists(mgmt, "queue", scratch_vhost, QUEUE)
    assert not exists(mgmt, "queue", scratch_vhost, f"{QUEUE}.dropped")
    assert not exists(mgmt, "exchange", scratch_vhost, f"{QUEUE}.drops")
    # Again: nothing left to do, and it says so.
    call_command("untrace", scratch_vhost)
    assert f"queue '{QUEUE}' was not there" in capsys.readouterr().out


def test_it_refuses_while_a_tap_reads_the_vhost(scratch_vhost, mgmt):
    with TapProcess(scratch_vhost):
        with pytest.raises(CommandError, match="A tap is reading these vhosts"):
            call_command("untrace", scratch_vhost)
        assert tracing_on(mgmt, scratch_vhost)
        assert exists(mgmt, "queue", scratch_vhost, QUEUE)


def test_it_reads_a_tap_queue_declared_with_other_bounds_and_says_how_to_apply_them(
    scratch_vhost, mgmt, superuser
):
    connection = client(scratch_vhost)
    channel = connection.channel()
    channel.queue_declare(QUEUE, durable=True, arguments={"x-max-length": 77})
    connection.close()
    with TapProcess(scratch_vhost):
        publish(scratch_vhost, 4)
        web = Client()
        web.force_login(superuser)
        status = wait_until(
            lambda: web.get("/api/tap/status").json(),
            check=lambda status: status.get("stored", 0) >= 4,
            timeout=15.0,
            what="4 events stored through the old queue",
        )
    assert any(
        "keeps the bounds it was declared with" in problem and "manage.py untrace" in problem
        for problem in status["problems"]
    ), status["problems"]
    assert mgmt.queue(scratch_vhost, QUEUE)["arguments"] == {"x-max-length": 77}
