"""Topology: the graph's data, neighbourhoods, distinct dead-letter and alternate edges, caps."""

from django.urls import reverse

from console import topology as topology_module
from tests.console.helpers import HOSTILE_EXCHANGE, HOSTILE_KEY, HOSTILE_QUEUE, wait_for_messages


def _data(client, vhost, **params):
    response = client.get(reverse("topology_data"), {"vhost": vhost, **params})
    return response.status_code, response.json()


def _edges(data):
    return {
        (e["data"]["source"], e["data"]["target"], e["data"]["kind"], e["data"]["label"])
        for e in data["elements"]
        if e["group"] == "edges"
    }


def _nodes(data):
    return {e["data"]["id"]: e["data"] for e in data["elements"] if e["group"] == "nodes"}


def test_it_draws_the_whole_small_vhost_with_keys_dead_letters_and_alternates(
    viewer_client, topology
):
    status, data = _data(viewer_client, topology)
    assert status == 200 and data["mode"] == "full"
    edges = _edges(data)
    assert ("e:orders", "q:orders.new", "binding", "order.created") in edges
    assert ("e:orders", "e:audit", "binding", "#") in edges
    assert ("q:orders.new", "e:dlx", "dead-letter", "dead letters → orders.dead") in edges
    assert ("e:orders", "e:unrouted", "alternate", "unroutable") in edges
    assert (f"e:{HOSTILE_EXCHANGE}", f"q:{HOSTILE_QUEUE}", "binding", HOSTILE_KEY) in edges
    nodes = _nodes(data)
    assert "e:amq.direct" not in nodes  # idle built-ins are left out
    assert "e:" not in nodes  # and the default exchange
    assert nodes[f"q:{HOSTILE_QUEUE}"]["url"] == reverse("queue", args=[topology, HOSTILE_QUEUE])
    assert nodes["e:orders"]["url"] == reverse("exchange", args=[topology, "orders"])


def test_it_narrows_to_a_queue_neighbourhood(viewer_client, topology):
    status, data = _data(viewer_client, topology, kind="queue", name="orders.new", depth="1")
    assert status == 200 and data["mode"] == "neighbourhood"
    assert data["focus"] == "q:orders.new"
    assert set(_nodes(data)) == {"q:orders.new", "e:orders", "e:dlx"}
    _, deeper = _data(viewer_client, topology, kind="queue", name="orders.new", depth="2")
    assert {"e:audit", "e:unrouted", "q:orders.dead"} <= set(_nodes(deeper))
    assert f"q:{HOSTILE_QUEUE}" not in _nodes(deeper)


def test_it_marks_a_missing_dead_letter_exchange(viewer_client, mgmt, scratch_vhost):
    mgmt.declare_queue(scratch_vhost, "lost", arguments={"x-dead-letter-exchange": "nowhere"})
    _, data = _data(viewer_client, scratch_vhost)
    assert _nodes(data)["e:nowhere"]["missing"] is True
    assert "url" not in _nodes(data)["e:nowhere"]


def test_it_answers_404_for_an_unknown_focus(viewer_client, topology):
    status, data = _data(viewer_client, topology, kind="queue", name="nope")
    assert status == 404 and "nope" in data["error"]


def test_it_refuses_to_load_a_huge_vhost_and_offers_a_start(
    viewer_client, mgmt, topology, monkeypatch
):
    monkeypatch.setattr(topology_module, "FULL_LOAD_LIMIT", 3)
    mgmt.publish(topology, "", "audit.log", "x")
    wait_for_messages(mgmt, topology, "audit.log", 1)
    status, data = _data(viewer_client, topology)
    assert status == 200 and data["mode"] == "too-big" and data["elements"] == []
    assert "too many to load" in data["notes"][0]
    assert data["suggestions"][0] == {
        "name": "audit.log",
        "messages": 1,
        "focus_url": reverse("topology") + f"?vhost={topology}&kind=queue&name=audit.log",
    }
    assert all("focus_url" in s for s in data["suggestions"])


def test_it_builds_a_neighbourhood_from_targeted_calls_in_a_huge_vhost(
    viewer_client, topology, monkeypatch
):
    monkeypatch.setattr(topology_module, "FULL_LOAD_LIMIT", 3)
    calls = []
    original = topology_module.full_graph
    monkeypatch.setattr(
        topology_module, "full_graph", lambda *a, **k: calls.append(a) or original(*a, **k)
    )
    status, data = _data(viewer_client, topology, kind="queue", name="orders.new")
    assert status == 200 and calls == []  # never listed the whole vhost
    edges = _edges(data)
    assert ("e:orders", "q:orders.new", "binding", "order.created") in edges
    assert ("q:orders.new", "e:dlx", "dead-letter", "dead letters → orders.dead") in edges
    assert ("e:dlx", "q:orders.dead", "binding", "orders.dead") in edges
    assert ("e:orders", "e:unrouted", "alternate", "unroutable") in edges
    assert _nodes(data)["e:orders"]["type"] == "topic"
    assert "only the direct neighbours" in data["notes"][0]
    _, around_exchange = _data(viewer_client, topology, kind="exchange", name="orders")
    assert ("e:orders", "e:audit", "binding", "#") in _edges(around_exchange)


def test_it_caps_the_edges_it_follows(viewer_client, mgmt, scratch_vhost, monkeypatch):
    monkeypatch.setattr(topology_module, "FULL_LOAD_LIMIT", 1)
    monkeypatch.setattr(topology_module, "EDGE_LIMIT", 3)
    mgmt.declare_exchange(scratch_vhost, "fan", "fanout")
    for number in range(5):
        mgmt.declare_queue(scratch_vhost, f"q{number}")
        mgmt.bind(scratch_vhost, "fan", f"q{number}")
    _, data = _data(viewer_client, scratch_vhost, kind="exchange", name="fan")
    assert data["counts"]["queues"] == 3
    assert any("Showing 3 of 5 bindings from 'fan'" in note for note in data["notes"])


def test_it_renders_the_page_with_the_data_address(viewer_client, topology):
    response = viewer_client.get(
        reverse("topology"), {"vhost": topology, "kind": "queue", "name": HOSTILE_QUEUE}
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="graph"' in page and "data-src=" in page
    assert "cytoscape-3.34.4.min.js" in page
    assert 'value="q &lt;script&gt;alert(&quot;q&quot;)&lt;/script&gt; / 50% ü"' in page
