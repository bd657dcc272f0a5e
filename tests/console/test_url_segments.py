"""Broker names in URLs: any name survives the trip link → server → view unchanged."""

import pytest
from django.urls import resolve, reverse

from console.url_segments import decode, encode, href_segment

NAMES = [
    "/",
    "orders",
    'q <script>alert("x")</script> / 50% ü',
    "100%25 literally",
    "a/b/c",
    "..",
    ".",
    "spaces  and\ttabs",
    "日本語キュー",
    "#?&=+;",
]


@pytest.mark.parametrize("name", NAMES)
def test_it_round_trips_names_through_reverse_and_resolve(name):
    url = reverse("queue", args=[name, name])
    # The server decodes the path once before resolving it, as WSGI/ASGI do.
    from urllib.parse import unquote

    match = resolve(unquote(url))
    assert match.url_name == "queue"
    assert match.kwargs == {"vhost": name, "name": name}


@pytest.mark.parametrize("name", NAMES)
def test_it_builds_the_same_href_as_reverse_without_its_cost(name):
    assert reverse("queues") + href_segment(name) + "/" + href_segment(name) + "/" == reverse(
        "queue", args=[name, name]
    )


def test_it_never_leaves_a_slash_or_a_bare_dot_segment():
    for name in NAMES:
        segment = encode(name)
        assert "/" not in segment
        assert segment not in (".", "..")
        assert decode(segment) == name


def test_it_names_the_default_exchange_amq_default_in_urls():
    url = reverse("exchange", args=["/", ""])
    assert url == "/exchanges/%252F/amq.default/"
    from urllib.parse import unquote

    assert resolve(unquote(url)).kwargs == {"vhost": "/", "name": ""}


def test_it_opens_a_queue_with_a_hostile_name_through_the_test_client(
    admin_client, mgmt, hostile_vhost
):
    name = 'q <script>alert("x")</script> / 50% ü'
    mgmt.declare_queue(hostile_vhost, name)
    response = admin_client.get(reverse("queue", args=[hostile_vhost, name]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "q &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; / 50% ü" in page
    assert '<script>alert("x")' not in page
    assert "does not exist" not in page
