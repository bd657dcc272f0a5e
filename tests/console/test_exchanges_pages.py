"""Exchanges: the list (paged, sorted, filtered by the broker) and one exchange's bindings."""

from django.urls import reverse

from tests.console.helpers import HOSTILE_EXCHANGE, STATS_WAIT, linked_names
from tests.polling import wait_until


def _list(client, vhost, **params):
    response = client.get(reverse("exchanges"), {"vhost": vhost, **params})
    assert response.status_code == 200
    return response.content.decode()


def _detail(client, vhost, name):
    response = client.get(reverse("exchange", args=[vhost, name]))
    assert response.status_code == 200
    return response.content.decode()


def test_it_lists_exchanges_with_types_and_alternate_exchange(viewer_client, topology):
    page = _list(viewer_client, topology, name="^(orders|dlx|audit|unrouted)$", regex="1")
    assert linked_names(page) == ["audit", "dlx", "orders", "unrouted"]
    row = page.split(">orders</a>", 1)[1].split("</tr>", 1)[0]
    assert "<td>topic</td>" in row
    assert '<td class="name mono">unrouted</td>' in row  # the alternate exchange


def test_it_sorts_and_escapes(viewer_client, topology):
    names = linked_names(_list(viewer_client, topology, sort="name", desc="1", page_size="20"))
    assert names == sorted(names, reverse=True)
    page = _list(viewer_client, topology, name="<b>")
    assert linked_names(page) == [HOSTILE_EXCHANGE]
    assert "ex &lt;b&gt;&quot;x&quot;&lt;/b&gt; / 100% é" in page


def test_it_shows_the_default_exchange_by_its_label(viewer_client, topology):
    page = _list(viewer_client, topology, page_size="50")
    assert "(AMQP default)" in page
    detail = _detail(viewer_client, topology, "")
    assert "bound to every queue of the vhost" in detail


def test_it_shows_bindings_out_to_queues_and_exchanges_and_in_from_exchanges(
    viewer_client, topology
):
    orders = _detail(viewer_client, topology, "orders")
    out = orders.split("<h2>Bindings out", 1)[1]
    assert reverse("queue", args=[topology, "orders.new"]) in out and "order.created" in out
    assert reverse("exchange", args=[topology, "audit"]) in out
    assert "unrouted</a> <small>(from argument)</small>" in orders
    audit = _detail(viewer_client, topology, "audit")
    into = audit.split("<h2>Bindings in", 1)[1].split("</section>", 1)[0]
    assert reverse("exchange", args=[topology, "orders"]) in into


def test_it_warns_about_an_alternate_exchange_that_does_not_exist(
    viewer_client, mgmt, scratch_vhost
):
    mgmt.declare_exchange(
        scratch_vhost, "lonely", "direct", arguments={"alternate-exchange": "gone"}
    )
    page = _detail(viewer_client, scratch_vhost, "lonely")
    assert "does not exist: unroutable messages are dropped" in page
    assert "every message published to it is dropped" not in page  # it has an AE


def test_it_says_when_the_exchange_is_gone(viewer_client, topology):
    assert "Exchange “nope” does not exist" in _detail(viewer_client, topology, "nope")


def test_it_shows_an_alternate_exchange_set_by_policy(viewer_client, mgmt, scratch_vhost):
    from rabbit.management_http import segment

    mgmt.declare_exchange(scratch_vhost, "by-policy", "direct")
    mgmt.put(
        f"policies/{segment(scratch_vhost)}/ae",
        {
            "pattern": "^by-policy$",
            "apply-to": "exchanges",
            "definition": {"alternate-exchange": "spill"},
        },
    )
    page = wait_until(
        lambda: _detail(viewer_client, scratch_vhost, "by-policy"),
        check=lambda html: "(from policy)" in html,
        what="the policy's alternate exchange",
        **STATS_WAIT,
    )
    assert ">spill</a>" in page
