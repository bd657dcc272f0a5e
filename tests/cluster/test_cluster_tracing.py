"""Tracing on every node of a real two-node cluster (tests/cluster/nodes.py).

The nodes start once for this module (about 10-20 s) and stop at its end;
the last test restarts node b, so it stays last.
"""

import time

import pytest
from django.test import override_settings

from rabbit import amqp, cluster
from tests.conftest import unique_name
from tests.polling import wait_until
from tests.tracer.tapping import TapProcess
from tracer.models import Message, TapGap, TapSession

# All transactional, so that pytest-django keeps them together (and in order)
# around the one cluster instead of moving some and starting the cluster twice.
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def new_vhost(rabbit_cluster):
    vhost = unique_name("warren-cluster") + " /é"
    rabbit_cluster.a.client().create_vhost(vhost, description="orders", tags="prod,eu")
    return vhost


def per_node(rabbit_cluster, vhost):
    """Each node's own answer, asked at its own listener."""
    return {node.name: node.client().vhost(vhost)["tracing"] for node in rabbit_cluster.nodes}


def test_it_finds_both_nodes_and_their_listeners_from_either_node(rabbit_cluster):
    a, b = rabbit_cluster.a, rabbit_cluster.b
    expected = [
        (a.name, f"http://localhost:{a.http_port}/", True, ""),
        (b.name, f"http://localhost:{b.http_port}/", True, ""),
    ]
    for entry in (a, b):
        found = cluster.discover(entry.client())
        assert [(n.name, n.url, n.running, n.problem) for n in found] == expected
    # A mapped URL that answers for another node (a port forward, a balancer) is refused.
    _, wrong = cluster.discover(a.client(), {b.name: a.management_url})
    assert wrong.url == "" and f"answers as node {a.name}, not as {b.name}" in wrong.problem
    _, mapped = cluster.discover(a.client(), {b.name: b.management_url})
    assert mapped.url == b.management_url and not mapped.problem


def test_it_switches_tracing_on_on_both_nodes(rabbit_cluster):
    a, b = rabbit_cluster.a, rabbit_cluster.b
    vhost = new_vhost(rabbit_cluster)
    assert per_node(rabbit_cluster, vhost) == {a.name: False, b.name: False}
    # The plain switch through one node's listener reaches that node only.
    a.client().set_tracing(vhost, True)
    assert per_node(rabbit_cluster, vhost) == {a.name: True, b.name: False}
    assert (a.tracing_by_ctl(vhost), b.tracing_by_ctl(vhost)) == (True, False)

    report = cluster.ensure_tracing(a.client(), vhost)
    assert report.states() == {a.name: "on", b.name: "on"}
    assert report.switched == [b.name] and report.everywhere
    assert per_node(rabbit_cluster, vhost) == {a.name: True, b.name: True}
    assert (a.tracing_by_ctl(vhost), b.tracing_by_ctl(vhost)) == (True, True)
    kept = b.client().vhost(vhost)
    assert kept["description"] == "orders" and sorted(kept["tags"]) == ["eu", "prod"]


def publish_through(node, vhost, count, tag):
    connection = amqp.blocking_connection(node.amqp_url, vhost=vhost, name=f"warren-test {tag}")
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare("orders", durable=False)
        for i in range(count):
            channel.basic_publish("", "orders", f"{tag} {i}".encode())
    finally:
        connection.close()


def captured_from(node, vhost):
    return Message.objects.filter(vhost=vhost, event="publish", node=node.name).count()


def tap_connected(tap, vhost):
    assert tap.process.poll() is None, tap.output()
    session = TapSession.objects.filter(pid=tap.process.pid).first()
    return session is not None and (session.connected or {}).get(vhost) is True


def test_the_tap_keeps_a_restarted_node_tracing(rabbit_cluster, viewer_client):
    a, b = rabbit_cluster.a, rabbit_cluster.b
    vhost = new_vhost(rabbit_cluster)
    env = {
        "WARREN_MANAGEMENT_URL": a.management_url,
        "WARREN_AMQP_URL": a.amqp_url,
        "WARREN_TRACE_VHOSTS": vhost,
    }
    tap = TapProcess(env=env).start(wait=False)
    try:
        wait_until(lambda: tap_connected(tap, vhost), timeout=30, what="the tap to connect")
        assert per_node(rabbit_cluster, vhost) == {a.name: True, b.name: True}
        publish_through(b, vhost, 5, "before")
        wait_until(
            lambda: captured_from(b, vhost) == 5, what="5 events traced by node b", timeout=15.0
        )

        b.stop()
        cluster._status_cache.clear()  # the page's 5 s memory would hide the change
        with override_settings(WARREN_MANAGEMENT_URL=a.management_url):
            status = viewer_client.get("/api/tap/status").json()
        assert status["tracing"][vhost] == {a.name: "on", b.name: "unreachable"}

        b.start()
        b.wait_up(time.monotonic() + 60)
        wait_until(
            lambda: per_node(rabbit_cluster, vhost)[b.name],
            timeout=30,
            interval=0.25,
            what="the tap to switch tracing on again on node b",
        )
        publish_through(b, vhost, 5, "after")
        wait_until(
            lambda: captured_from(b, vhost) == 10, what="10 events traced by node b", timeout=15.0
        )

        cluster._status_cache.clear()
        with override_settings(WARREN_MANAGEMENT_URL=a.management_url):
            status = viewer_client.get("/api/tap/status").json()
        assert status["tracing"] == {vhost: {a.name: "on", b.name: "on"}}
        assert status["tracing_problem"] == ""
    finally:
        returncode = tap.stop()
    assert returncode == 0, tap.output()
    bodies = sorted(bytes(m.body).decode() for m in Message.objects.filter(node=b.name))
    assert bodies == sorted([f"before {i}" for i in range(5)] + [f"after {i}" for i in range(5)])
    gap = TapGap.objects.get(vhost=vhost)
    assert gap.reason == "tracing was off" and gap.ended_at > gap.started_at
