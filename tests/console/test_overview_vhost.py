"""Overview respects the vhost selector: the chosen vhost's totals only, the cluster
still whole; a vhost that is gone falls back to every vhost."""

import re

from django.urls import reverse

from tests.console.helpers import publish, wait_for_stats
from tests.polling import wait_until


def _totals(page):
    return dict(re.findall(r'<dt>(\w+)</dt><dd data-total="\w+">(\d+)</dd>', page))


def test_it_counts_the_chosen_vhost_only(viewer_client, mgmt, scratch_vhost):
    for name in ("one", "two"):
        mgmt.declare_queue(scratch_vhost, name)
    wait_for_stats(mgmt, scratch_vhost, "two")
    publish(mgmt, scratch_vhost, "one", count=3)
    page = wait_until(
        lambda: viewer_client.get(reverse("overview") + f"?vhost={scratch_vhost}").content.decode(),
        check=lambda html: 'data-figure="messages">3<' in html,
        what="the vhost's 3 messages on Overview",
        timeout=15,
        interval=1,
    )
    totals = _totals(page)
    assert totals["Queues"] == "2" and totals["Exchanges"] == "7"  # the 7 built-in exchanges
    assert totals["Connections"] == "0" and totals["Consumers"] == "0"
    assert f'of vhost</span> <span class="mono">{scratch_vhost}</span>' in page
    assert 'id="cluster"' in page  # the cluster serves every vhost: still shown
    # the session remembers the choice, and ?vhost= goes back to every vhost
    again = viewer_client.get(reverse("overview")).content.decode()
    assert _totals(again)["Queues"] == "2"
    every = viewer_client.get(reverse("overview") + "?vhost=").content.decode()
    assert int(_totals(every)["Queues"]) >= 2 and "of vhost</span>" not in every


def test_it_falls_back_to_every_vhost_when_the_chosen_one_is_gone(viewer_client):
    page = viewer_client.get(reverse("overview") + "?vhost=warren-no-such-vhost").content.decode()
    assert "does not exist (any more): showing every vhost" in page
    assert "of vhost</span>" not in page


def test_it_draws_the_overview_charts_with_a_range_picker(viewer_client):
    page = viewer_client.get(reverse("overview") + "?range=8h").content.decode()
    assert "Over time, last 8 hours" in page
    for key in ("1m", "10m", "1h", "8h", "1d"):
        assert f"?range={key}" in page
    assert f'data-url="{reverse("overview_charts")}?range=8h"' in page
    assert 'data-chart="churn"' in page
