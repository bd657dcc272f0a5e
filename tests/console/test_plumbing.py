"""Warren's own plumbing (the tap queue, its drop counter and their bindings) in a traced
vhost: marked as Warren's, hidden from the lists unless asked, and purging, deleting or
unbinding it refused on the server unless the operator confirms that tracing breaks."""

import pytest
from django.urls import reverse

from console.models import AuditEntry
from tests.console.helpers import linked_names, publish, wait_for_messages, wait_for_stats

TAP, DROPPED, DROPS = "warren.tap", "warren.tap.dropped", "warren.tap.drops"


@pytest.fixture
def traced_vhost(mgmt, scratch_vhost):
    """A vhost with the plumbing the tap declares (tracer/tap/reader.py), and a user queue."""
    mgmt.declare_exchange(scratch_vhost, DROPS, "fanout")
    mgmt.declare_queue(scratch_vhost, DROPPED)
    mgmt.bind(scratch_vhost, DROPS, DROPPED)
    mgmt.declare_queue(scratch_vhost, TAP, arguments={"x-dead-letter-exchange": DROPS})
    mgmt.bind(scratch_vhost, "amq.rabbitmq.trace", TAP, routing_key="#")
    mgmt.declare_queue(scratch_vhost, "orders")
    wait_for_stats(mgmt, scratch_vhost, TAP)
    return scratch_vhost


def _page(client, name, **params):
    response = client.get(reverse(name), params)
    assert response.status_code == 200
    return response.content.decode()


def _trace_binding(mgmt, vhost):
    return [b for b in mgmt.queue_bindings(vhost, TAP) if b["source"] == "amq.rabbitmq.trace"]


def test_it_hides_warrens_queues_until_asked(viewer_client, traced_vhost):
    page = _page(viewer_client, "queues", vhost=traced_vhost)
    assert linked_names(page) == ["orders"]
    assert "2 of Warren's own queues hidden on this page." in page
    shown = _page(viewer_client, "queues", vhost=traced_vhost, plumbing="1")
    assert linked_names(shown) == ["orders", TAP, DROPPED]
    assert shown.count("Warren's</span>") >= 2
    assert "Hide them" in shown and 'name="plumbing" value="1"' in shown


def test_it_hides_warrens_exchange_until_asked(viewer_client, traced_vhost):
    page = _page(viewer_client, "exchanges", vhost=traced_vhost)
    assert DROPS not in linked_names(page)
    assert "1 of Warren's own exchanges hidden" in page
    assert DROPS in linked_names(
        _page(viewer_client, "exchanges", vhost=traced_vhost, plumbing="1")
    )


def test_it_marks_the_tap_queue_and_asks_for_the_confirmation(operator_client, traced_vhost):
    page = operator_client.get(reverse("queue", args=[traced_vhost, TAP])).content.decode()
    assert "data-plumbing>Warren's</span>" in page
    assert "purging it throws away the trace events" in page
    assert "deleting it breaks tracing of vhost" in page
    assert page.count('name="break_tracing" value="yes" required') >= 3  # purge, delete, unbind


def test_it_refuses_to_purge_the_tap_queue_without_the_confirmation(
    operator_client, mgmt, traced_vhost
):
    publish(mgmt, traced_vhost, TAP, count=2)
    wait_for_messages(mgmt, traced_vhost, TAP, 2)
    url = reverse("queue_purge", args=[traced_vhost, TAP])
    page = operator_client.post(url, {"depth": "2"}, follow=True).content.decode()
    assert "Nothing was done." in page and "Confirm that tracing breaks" in page
    assert mgmt.queue(traced_vhost, TAP)["messages"] == 2
    entry = AuditEntry.objects.filter(action="purge_queue").latest("id")
    assert entry.result == AuditEntry.FAILED and "not confirmed" in entry.detail
    operator_client.post(url, {"depth": "2", "break_tracing": "yes"})
    entry = AuditEntry.objects.filter(action="purge_queue").latest("id")
    assert entry.result == AuditEntry.OK, entry.detail
    wait_for_messages(mgmt, traced_vhost, TAP, 0)


def test_it_refuses_to_delete_warrens_queues_and_exchange_without_it(
    operator_client, mgmt, traced_vhost
):
    for name in (TAP, DROPPED):
        operator_client.post(reverse("queue_delete", args=[traced_vhost, name]))
        assert mgmt.queue(traced_vhost, name)["name"] == name
    operator_client.post(reverse("exchange_delete", args=[traced_vhost, DROPS]))
    assert mgmt.exchange(traced_vhost, DROPS)["name"] == DROPS
    assert AuditEntry.objects.filter(result=AuditEntry.FAILED).count() == 3
    operator_client.post(
        reverse("queue_delete", args=[traced_vhost, DROPPED]), {"break_tracing": "yes"}
    )
    names = [q["name"] for q in mgmt.queues(traced_vhost, columns=["name"])]
    assert DROPPED not in names and TAP in names


def test_it_refuses_to_unbind_the_tap_from_the_trace_exchange_without_it(
    operator_client, mgmt, traced_vhost
):
    (binding,) = _trace_binding(mgmt, traced_vhost)
    form = {
        "source": "amq.rabbitmq.trace",
        "destination_type": "q",
        "destination": TAP,
        "properties_key": binding["properties_key"],
        "routing_key": "#",
    }
    url = reverse("binding_remove", args=[traced_vhost])
    page = operator_client.post(url, form, follow=True).content.decode()
    assert "removing it stops trace events" in page
    assert len(_trace_binding(mgmt, traced_vhost)) == 1
    operator_client.post(url, form | {"break_tracing": "yes"})
    assert _trace_binding(mgmt, traced_vhost) == []


def test_it_leaves_the_users_own_queues_alone(operator_client, mgmt, traced_vhost):
    operator_client.post(reverse("queue_delete", args=[traced_vhost, "orders"]))
    names = [q["name"] for q in mgmt.queues(traced_vhost, columns=["name"])]
    assert "orders" not in names


def _graph_names(client, vhost, **params):
    response = client.get(reverse("topology_data"), {"vhost": vhost, **params})
    assert response.status_code == 200
    return {e["data"]["name"] for e in response.json()["elements"] if e["group"] == "nodes"}


def test_it_leaves_the_plumbing_out_of_the_graph_unless_asked(viewer_client, traced_vhost):
    names = _graph_names(viewer_client, traced_vhost)
    assert TAP not in names and DROPS not in names and "amq.rabbitmq.trace" not in names
    shown = _graph_names(viewer_client, traced_vhost, plumbing="1")
    assert {TAP, DROPPED, DROPS, "amq.rabbitmq.trace"} <= shown


def test_it_passes_over_a_vhost_deleted_since_the_list_was_read(mgmt, traced_vhost):
    from console import topology

    gone = "warren-test-aaa-" + traced_vhost[-10:]  # tried first: it sorts first
    mgmt.create_vhost(gone)
    names = [gone, traced_vhost]  # read while both were there
    mgmt.delete_vhost(gone)  # as another operator, or another program, might
    assert topology.first_vhost_with_queues(mgmt, names) == traced_vhost


def test_it_opens_the_graph_on_a_vhost_with_the_users_queues(viewer_client, mgmt, traced_vhost):
    from console import topology

    only_plumbing = traced_vhost + "-plumbing"
    mgmt.create_vhost(only_plumbing)
    try:
        mgmt.declare_queue(only_plumbing, TAP)
        names = [only_plumbing, traced_vhost]
        assert topology.first_vhost_with_queues(mgmt, names) == traced_vhost
        assert topology.first_vhost_with_queues(mgmt, [only_plumbing]) == only_plumbing
    finally:
        mgmt.delete_vhost(only_plumbing)
    page = viewer_client.get(reverse("topology"), {"vhost": ""}).content.decode()
    assert "The topology is drawn per vhost: showing" in page
