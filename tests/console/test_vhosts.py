"""Vhosts: the selector on every page, the choice kept in URL and session, per-vhost totals."""

import re

from django.urls import reverse

from tests.console.helpers import STATS_WAIT, publish
from tests.polling import wait_until


def _options(page):
    select = page.split('name="vhost"', 1)[1].split("</select>", 1)[0]
    return re.findall(r'<option value="([^"]*)"( selected)?>', select)


def test_it_puts_the_selector_on_every_page_with_the_choice_selected(viewer_client, hostile_vhost):
    escaped = "warren-test-vh &lt;script&gt;x&lt;/script&gt; /50% ü"
    for name in ("overview", "queues", "exchanges", "connections", "audit_log", "vhosts"):
        page = viewer_client.get(reverse(name), {"vhost": hostile_vhost}).content.decode()
        options = _options(page)
        assert ("", "") in options, name  # "All vhosts"
        assert any(value.startswith(escaped) and chosen for value, chosen in options), name
        assert "<script>x</script>" not in page


def test_it_sends_the_selector_of_a_detail_page_back_to_its_list(viewer_client, topology):
    page = viewer_client.get(reverse("queue", args=[topology, "orders.new"])).content.decode()
    assert f'<form class="selector" method="get" action="{reverse("queues")}">' in page


def test_it_keeps_the_choice_per_session_until_all_vhosts_are_chosen(viewer_client, topology):
    viewer_client.get(reverse("exchanges"), {"vhost": topology})
    assert ('In vhost <strong class="mono">' + topology) in viewer_client.get(
        reverse("queues")
    ).content.decode()
    viewer_client.get(reverse("queues"), {"vhost": ""})
    assert "In every vhost" in viewer_client.get(reverse("exchanges")).content.decode()


def test_it_shows_totals_and_tracing_per_vhost(viewer_client, mgmt, topology, scratch_vhost):
    other = scratch_vhost + "-traced"
    mgmt.create_vhost(other, description="traced <one>")
    try:
        mgmt.set_tracing(other, True)
        publish(mgmt, topology, "orders.new", 2)
        page = wait_until(
            lambda: viewer_client.get(reverse("vhosts")).content.decode(),
            check=lambda html: (
                f">{topology}</a>" in html
                and '<td class="num strong">2</td>'
                in html.split(f">{topology}</a>", 1)[1].split("</tr>")[0]
            ),
            what="the vhost's message total",
            **STATS_WAIT,
        )
        row = page.split(f">{topology}</a>", 1)[1].split("</tr>", 1)[0]
        cells = re.findall(r'<td class="num[^"]*">([^<]*)</td>', row)
        assert cells[:5] == ["5", "12", "2", "0", "2"]  # queues, exchanges, ready, unacked, total
        assert re.search(r'data-node-tracing="[^"]+">off</span>', row)  # the node's firehose
        traced = page.split(f">{other}</a>", 1)[1].split("</tr>", 1)[0]
        assert "traced &lt;one&gt;" in traced
        assert re.search(r'data-node-tracing="[^"]+">on</span>', traced)
        # Switching tracing on kept the description.
        assert mgmt.vhost(other)["description"] == "traced <one>"
    finally:
        mgmt.delete_vhost(other)


def test_it_falls_back_to_every_vhost_when_the_chosen_one_is_gone(
    viewer_client, mgmt, scratch_vhost
):
    doomed = scratch_vhost + "-doomed"
    mgmt.create_vhost(doomed)
    for name in ("queues", "exchanges", "connections", "channels"):
        viewer_client.get(reverse(name), {"vhost": doomed})
        if name == "queues":
            mgmt.delete_vhost(doomed)
        page = viewer_client.get(reverse(name)).content.decode()
        assert f"Vhost “{doomed}” does not exist (any more): showing every vhost." in page, name
        assert "banner-error" not in page, name
        assert "In every vhost" in page, name
        # The choice is forgotten: the next page load is quiet.
        assert "does not exist" not in viewer_client.get(reverse(name)).content.decode()


def test_it_leaves_out_a_vhost_deleted_while_the_list_is_counted(mgmt, scratch_vhost):
    from console import vhosts

    doomed = scratch_vhost + "-doomed"
    mgmt.create_vhost(doomed)
    listed = [vhosts.summarise(v) for v in mgmt.vhosts()]
    assert doomed in [s.name for s in listed]
    mgmt.delete_vhost(doomed)  # between the list and its counts, as another operator might
    counted = vhosts.count_objects_in(mgmt, listed)
    names = [s.name for s in counted]
    assert doomed not in names and scratch_vhost in names
    mine = next(s for s in counted if s.name == scratch_vhost)
    assert (mine.queues, mine.exchanges) == (0, 7)  # the broker's own seven exchanges
