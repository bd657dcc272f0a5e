"""The Queues page: the broker's own paging, sorting and filtering, kept in the URL."""

from urllib.parse import unquote

import pytest
from django.urls import reverse

from tests.console.helpers import (
    HOSTILE_QUEUE,
    linked_hrefs,
    linked_names,
    publish,
    wait_for_messages,
)
from tests.polling import wait_until

ALL_QUEUES = ["audit.log", "orders.dead", "orders.new", "orders.unrouted", HOSTILE_QUEUE]


def _page(client, vhost, **params):
    params = {"vhost": vhost, **params}
    response = client.get(reverse("queues"), params)
    assert response.status_code == 200
    return response.content.decode()


def test_it_lists_every_queue_of_the_vhost_with_names_escaped(viewer_client, topology):
    page = _page(viewer_client, topology)
    assert linked_names(page) == sorted(ALL_QUEUES)
    assert "q &lt;script&gt;alert(&quot;q&quot;)&lt;/script&gt; / 50% ü" in page
    assert '<script>alert("q")' not in page
    assert "1–5 of 5" in page


def test_it_links_each_row_to_its_queue_page(viewer_client, topology):
    page = _page(viewer_client, topology)
    for href, name in zip(linked_hrefs(page), linked_names(page), strict=True):
        detail = viewer_client.get(href)
        assert detail.status_code == 200
        assert "does not exist" not in detail.content.decode(), name
    hostile = dict(zip(linked_names(page), linked_hrefs(page), strict=True))[HOSTILE_QUEUE]
    assert unquote(unquote(hostile)).endswith(HOSTILE_QUEUE + "/")


def test_it_sorts_by_message_count_through_the_broker(viewer_client, mgmt, topology):
    publish(mgmt, topology, "audit.log", 3)
    publish(mgmt, topology, "orders.dead", 1)
    wait_for_messages(mgmt, topology, "audit.log", 3)
    wait_for_messages(mgmt, topology, "orders.dead", 1)
    biggest_first = linked_names(_page(viewer_client, topology, sort="messages", desc="1"))
    assert biggest_first[:2] == ["audit.log", "orders.dead"]
    smallest_first = linked_names(_page(viewer_client, topology, sort="messages", desc="0"))
    assert smallest_first[-2:] == ["orders.dead", "audit.log"]
    assert linked_names(_page(viewer_client, topology, sort="name", desc="1")) == sorted(
        ALL_QUEUES, reverse=True
    )


def test_it_filters_by_substring_and_by_regex(viewer_client, topology):
    assert linked_names(_page(viewer_client, topology, name="ORDERS")) == [
        "orders.dead",
        "orders.new",
        "orders.unrouted",
    ]
    assert linked_names(
        _page(viewer_client, topology, name=r"^orders\.(new|dead)$", regex="1")
    ) == [
        "orders.dead",
        "orders.new",
    ]
    page = _page(viewer_client, topology, name="<script>")
    assert linked_names(page) == [HOSTILE_QUEUE]
    assert "1–1 of 1 matching (5 in all)" in page


def test_it_explains_a_broken_regular_expression_instead_of_failing(viewer_client, topology):
    page = _page(viewer_client, topology, name="orders(", regex="1")
    assert "not a valid regular expression" in page
    assert linked_names(page) == []


def test_it_pages_with_the_broker_and_keeps_the_state_in_the_links(viewer_client, topology):
    first = _page(viewer_client, topology, page_size="2", sort="name")
    assert linked_names(first) == sorted(ALL_QUEUES)[:2]
    assert "1–2 of 5" in first
    assert "page_size=2&amp;page=2" in first
    third = _page(viewer_client, topology, page_size="2", page="3")
    assert linked_names(third) == sorted(ALL_QUEUES)[4:]
    # A page past the end (the list shrank) shows the last page, not an error.
    beyond = _page(viewer_client, topology, page_size="2", page="9")
    assert linked_names(beyond) == sorted(ALL_QUEUES)[4:]


def test_it_gives_htmx_the_list_alone_with_a_refresh_that_keeps_the_state(viewer_client, topology):
    response = viewer_client.get(
        reverse("queues"),
        {"vhost": topology, "name": "orders", "sort": "messages", "desc": "1", "page_size": "20"},
        headers={"HX-Request": "true"},
    )
    fragment = response.content.decode()
    assert fragment.lstrip().startswith('<section id="queue-list"')
    assert "<html" not in fragment
    assert "name=orders&amp;sort=messages&amp;desc=1&amp;page_size=20" in fragment
    assert 'hx-trigger="every 5s"' in fragment


def test_it_remembers_the_vhost_in_the_session_until_all_are_chosen(
    viewer_client, mgmt, topology, scratch_vhost
):
    other = scratch_vhost + "-other"
    mgmt.create_vhost(other)
    try:
        mgmt.declare_queue(other, "elsewhere")
        _page(viewer_client, topology)
        remembered = viewer_client.get(reverse("queues")).content.decode()
        assert "elsewhere" not in linked_names(remembered)
        assert "orders.new" in linked_names(remembered)
        # The broker caches a queue listing for five times as long as it took to
        # make (management.db_cache_multiplier): under a busy test run, a list of
        # every vhost's queues made moments before these were declared.
        everything = wait_until(
            lambda: viewer_client.get(
                reverse("queues"),
                {"vhost": "", "name": r"^(elsewhere|orders\.new)$", "regex": "1"},
            ).content.decode(),
            30,
            0.5,
            "both queues listed across vhosts",
            check=lambda page: {"elsewhere", "orders.new"} <= set(linked_names(page)),
        )
        assert ">Vhost<" in everything
        assert f'<td class="name mono">{other}</td>' in everything
    finally:
        mgmt.delete_vhost(other)


@pytest.mark.parametrize("page_size", ["20", "500"])
def test_it_asks_the_broker_for_one_page_only(viewer_client, topology, page_size):
    page = _page(viewer_client, topology, page_size=page_size)
    assert f'<option value="{page_size}" selected>' in page
