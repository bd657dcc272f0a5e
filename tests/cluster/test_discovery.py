"""Finding a cluster's nodes and their management listeners; tracing per node.

The pure rules with listener entries as /api/overview gives them, then the
real single-node broker (its node name, its `::` listener, its vhosts).
"""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from console import env
from rabbit import cluster
from rabbit.management_http import BrokerNotFound, segment
from tests.conftest import unique_name


def listener(node, protocol="http", ip="::", port=15672):
    return {"node": node, "protocol": protocol, "ip_address": ip, "port": port}


def test_it_reaches_a_listener_on_every_address_at_the_node_names_host():
    assert cluster.listener_url(listener("rabbit@db-1")) == "http://db-1:15672/"
    assert cluster.listener_url(listener("rabbit@db-1", ip="0.0.0.0"))  # noqa: S104 - as the broker reports it == "http://db-1:15672/"
    assert cluster.listener_url(listener("rabbit@db-1", ip="")) == "http://db-1:15672/"


def test_it_reaches_a_listener_on_one_address_at_that_address():
    assert cluster.listener_url(listener("rabbit@db-1", ip="10.0.0.7")) == "http://10.0.0.7:15672/"
    url = cluster.listener_url(listener("rabbit@db-1", "https", "fd00::7", 15671), "/rabbitmq/")
    assert url == "https://[fd00::7]:15671/rabbitmq/"


def test_it_keeps_one_management_listener_per_node_preferring_the_configured_scheme():
    listeners = [
        listener("rabbit@a", "amqp", "::", 5672),
        listener("rabbit@a", "clustering", "::", 25672),
        listener("rabbit@a", "https", "::", 15671),
        listener("rabbit@a", "http", "::", 15672),
        listener("rabbit@b", "https", "10.0.0.2", 15671),
    ]
    assert cluster.management_urls(listeners, "https") == {
        "rabbit@a": "https://a:15671/",
        "rabbit@b": "https://10.0.0.2:15671/",
    }
    assert cluster.management_urls(listeners, "http")["rabbit@a"] == "http://a:15672/"
    assert cluster.management_urls([], "http") == {}


def test_it_reads_node_urls_strictly():
    parsed = env.parse_node_urls(
        " rabbit@a = http://10.0.0.1:15672/ ,rabbit@b=https://[fd00::2]:15671/x/"
    )
    assert parsed == {
        "rabbit@a": "http://10.0.0.1:15672/",
        "rabbit@b": "https://[fd00::2]:15671/x/",
    }
    assert env.parse_node_urls("") == {}
    assert env.env_node_urls(environ={}) == {}
    for bad, words in [
        ("rabbit@a", "node=url pairs"),
        ("rabbit-a=http://a:15672/", "node=url pairs"),
        ("@a=http://a:15672/", "node=url pairs"),
        ("rabbit@a=ftp://a:15672/", "http(s)://host:port/"),
        ("rabbit@a=http://a:port/", "http(s)://host:port/"),
        ("rabbit@a=", "http(s)://host:port/"),
        ("rabbit@a=http://a:1/,,rabbit@b=http://b:1/", "without empty items"),
        ("rabbit@a=http://a:1/,rabbit@a=http://b:1/", "given twice"),
    ]:
        with pytest.raises(ImproperlyConfigured, match="WARREN_MANAGEMENT_NODE_URLS") as error:
            env.env_node_urls(environ={"WARREN_MANAGEMENT_NODE_URLS": bad})
        assert words in str(error.value), bad


def test_it_finds_the_real_broker_as_one_node_at_its_own_listener(mgmt):
    node = mgmt.overview()["node"]
    (found,) = cluster.discover(mgmt)
    assert found.name == node and found.running and not found.problem
    port = next(item["port"] for item in mgmt.overview()["listeners"] if item["protocol"] == "http")
    assert found.url.endswith(f":{port}/")
    assert mgmt.for_url(found.url).overview_columns(["node"])["node"] == node


def test_it_believes_a_mapped_url_only_when_it_answers_as_its_node(mgmt):
    node = mgmt.overview()["node"]
    (found,) = cluster.discover(mgmt, {node: "http://127.0.0.1:1/"})
    assert found.url == "" and "cannot be reached" in found.problem
    report = cluster.Cluster(mgmt, {node: "http://127.0.0.1:1/"}).tracing("/")
    assert report.states() == {node: cluster.UNREACHABLE}
    assert not report.everywhere and f"node {node} is unreachable" in report.trouble()
    (found,) = cluster.discover(mgmt, {node: mgmt.base_url})
    assert found.url == mgmt.base_url and not found.problem


def test_it_switches_tracing_on_keeping_description_and_tags(mgmt):
    vhost = unique_name("warren-test-vhost") + " /é<x>"
    mgmt.put(f"vhosts/{segment(vhost)}", {"description": "keep me", "tags": "blue,green"})
    try:
        node = mgmt.overview()["node"]
        before = cluster.for_client(mgmt).tracing(vhost)
        assert before.states() == {node: "off"} and before.found_off and not before.switched
        report = cluster.ensure_tracing(mgmt, vhost)
        assert report.states() == {node: "on"} and report.switched == [node]
        kept = mgmt.vhost(vhost)
        assert kept["tracing"] is True and kept["description"] == "keep me"
        assert sorted(kept["tags"]) == ["blue", "green"]
        again = cluster.ensure_tracing(mgmt, vhost)
        assert again.states() == {node: "on"} and not again.found_off and not again.switched
        assert cluster.tracing_was_on_everywhere(mgmt, vhost) is True
        mgmt.set_tracing(vhost, False)
        assert cluster.tracing_was_on_everywhere(mgmt, vhost) is False
        assert mgmt.vhost(vhost)["tracing"] is True
    finally:
        mgmt.delete_vhost(vhost)
    with pytest.raises(BrokerNotFound):
        cluster.ensure_tracing(mgmt, vhost)


def test_it_maps_traced_vhosts_to_node_states_for_the_status(mgmt, scratch_vhost):
    node = mgmt.overview()["node"]
    gone = unique_name("warren-test-gone")
    states, problem = cluster.tracing_map([scratch_vhost, gone], client=mgmt)
    assert states == {scratch_vhost: {node: "off"}, gone: {}} and problem == ""
    with override_settings(WARREN_MANAGEMENT_URL="http://127.0.0.1:1/"):
        states, problem = cluster.tracing_map([scratch_vhost])
    assert states == {} and "cannot ask the broker which nodes trace" in problem
