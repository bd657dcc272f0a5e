"""The node pages against the real broker: the list, one node's figures, alarms and a
node that is not in the cluster; the cluster on Overview."""

import re

from django.urls import reverse

from console.nodes import alarms_of, memory_parts, node_detail
from console.overview import node_summary
from rabbit import nodes
from rabbit.brokers import default_broker


def test_it_lists_the_nodes_with_links_to_their_pages(viewer_client, mgmt):
    page = viewer_client.get(reverse("nodes")).content.decode()
    for node in mgmt.nodes():
        assert f'href="{reverse("node", args=[node["name"]])}"' in page
    assert "running" in page


def test_it_shows_one_nodes_resources_memory_listeners_and_plugins(viewer_client, mgmt):
    name = mgmt.nodes()[0]["name"]
    response = viewer_client.get(reverse("node", args=[name]))
    assert response.status_code == 200
    page = response.content.decode()
    raw = nodes.node(mgmt, name)
    for figure in ("memory", "disk", "fd", "sockets", "processes", "uptime"):
        assert f'data-figure="{figure}"' in page
    assert f">{raw['fd_total']:,}<" in page or f"of {raw['fd_total']:,}" in page
    assert "alarm limit" in page  # disk free against the limit
    assert "rabbitmq_management" in page  # an enabled plugin
    assert re.search(
        r"<td>amqp</td><td class=\"mono\">[^<]+</td><td class=\"num mono\">5672</td>", page
    )
    assert "Binaries" in page and "code" in page  # the memory breakdown
    assert "data-alarms" not in page  # no alarm on the test broker


def test_it_refreshes_its_figures_for_htmx(viewer_client, mgmt):
    name = mgmt.nodes()[0]["name"]
    fragment = viewer_client.get(reverse("node", args=[name]), HTTP_HX_REQUEST="true")
    assert fragment.content.decode().lstrip().startswith('<div id="node-figures"')


def test_it_says_so_for_a_node_not_in_the_cluster(viewer_client):
    response = viewer_client.get(reverse("node", args=["rabbit@nowhere"]))
    assert response.status_code == 200
    assert "Node “rabbit@nowhere” is not in the cluster" in response.content.decode()


def test_it_shows_a_banner_when_the_broker_is_down(viewer_client, settings):
    settings.WARREN_MANAGEMENT_URL = "http://127.0.0.1:9/"
    for url in (reverse("nodes"), reverse("node", args=["rabbit@x"])):
        response = viewer_client.get(url)
        assert response.status_code == 200
        assert "The broker cannot be reached" in response.content.decode()


def test_it_highlights_alarms_in_words():
    node = node_summary(
        {"name": "rabbit@a", "running": True, "mem_alarm": True, "disk_free_alarm": True}
    )
    assert alarms_of(node, ["rabbit@b"]) == [
        "memory alarm: publishers are blocked",
        "disk alarm: publishers are blocked",
        "network partition with rabbit@b",
    ]
    assert alarms_of(node_summary({"name": "rabbit@c", "running": False})) == ["not running"]


def test_it_sorts_memory_largest_first_against_the_watermark_total():
    parts, total, strategy = memory_parts(
        {"binary": 10, "code": 30, "strategy": "rss", "total": {"rss": 100, "erlang": 40}}
    )
    assert [p.key for p in parts] == ["code", "binary"]
    assert (total, strategy, parts[0].share, parts[0].label) == (100, "rss", 30.0, "code")


def test_it_reads_a_memory_breakdown_not_yet_available_as_none(sick_broker):
    # Seen from a node just restarted: the node page drew its figures from a
    # string and failed with a 500.
    sick_broker.mode = "memory-unavailable"
    memory = nodes.memory(default_broker().client(), "rabbit@starting")
    assert memory == {}
    assert memory_parts(memory) == ([], 0, "")


def test_it_keeps_only_the_nodes_own_listeners():
    detail = node_detail(
        {"name": "rabbit@a", "running": True},
        {},
        [
            {"node": "rabbit@a", "protocol": "amqp", "ip_address": "::", "port": 5672},
            {"node": "rabbit@b", "protocol": "amqp", "ip_address": "::", "port": 5672},
        ],
    )
    assert [(x.protocol, x.port) for x in detail.listeners] == [("amqp", 5672)]


def test_it_shows_the_cluster_on_overview_with_node_links(viewer_client, mgmt):
    page = viewer_client.get(reverse("overview")).content.decode()
    assert 'id="cluster"' in page
    for node in mgmt.nodes():
        assert f'href="{reverse("node", args=[node["name"]])}"' in page


def test_it_has_nodes_vhosts_and_channels_in_the_navigation(viewer_client):
    nav = viewer_client.get(reverse("overview")).content.decode().split('class="mainnav"', 1)[1]
    nav = nav.split("</nav>", 1)[0]
    for name in ("nodes", "vhosts", "channels"):
        assert f'href="{reverse(name)}"' in nav
