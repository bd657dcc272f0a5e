"""Helpers for broker-console tests: bounded waits on the management API's statistics.

The management API refreshes its figures every 5 s (collect_statistics_interval),
so a count read right after a publish may still be the old one. Waits on it
(tests.polling.wait_until with STATS_WAIT) ask every 0.5 s and take a queue or
connection the broker does not know yet as not yet there. They are bounded at
30 s: a figure usually comes within one 5 s refresh, but with both databases'
parallel runs loading the broker, a queue's count stayed stale for over 12 s
(the bound before) at times; a passing wait returns as soon as the figure comes.
"""

from typing import Any

from rabbit.management_http import BrokerNotFound
from tests.polling import wait_until

HOSTILE_QUEUE = 'q <script>alert("q")</script> / 50% ü'
HOSTILE_EXCHANGE = 'ex <b>"x"</b> / 100% é'
HOSTILE_KEY = "k.<i>.#"

STATS_TIMEOUT_S = 30.0
STATS_WAIT: dict[str, Any] = {
    "timeout": STATS_TIMEOUT_S,
    "interval": 0.5,
    "ignoring": (BrokerNotFound,),
}


def messages_in(mgmt, vhost, queue):
    """The queue's message count as the management API reports it (may be None at first)."""
    return mgmt.queue(vhost, queue).get("messages")


def wait_for_messages(mgmt, vhost, queue, expected, timeout=STATS_TIMEOUT_S):
    """Wait until the management API reports exactly `expected` messages in queue."""
    return wait_until(
        lambda: messages_in(mgmt, vhost, queue),
        check=lambda count: count == expected,
        what=f"{expected} messages in {queue!r}",
        **(STATS_WAIT | {"timeout": timeout}),
    )


def wait_for_stats(mgmt, vhost, queue, timeout=STATS_TIMEOUT_S):
    """Wait until the broker has statistics for a new queue."""
    return wait_until(
        lambda: mgmt.queue(vhost, queue),
        check=lambda raw: "messages" in raw,
        what=f"statistics of {queue!r}",
        **(STATS_WAIT | {"timeout": timeout}),
    )


def publish(mgmt, vhost, routing_key, count=1, exchange="", body="m", properties=None):
    for number in range(count):
        answer = mgmt.publish(vhost, exchange, routing_key, f"{body}{number}", properties)
        assert answer.get("routed"), f"{body}{number} was not routed by {exchange!r}"


def linked_names(page_html):
    """The names in the first column of a list page, in page order, unescaped."""
    import html
    import re

    return [
        html.unescape(name)
        for name in re.findall(r'<td class="name"><a href="[^"]*">(.*?)</a>', page_html)
    ]


def linked_hrefs(page_html):
    import html
    import re

    return [html.unescape(h) for h in re.findall(r'<td class="name"><a href="([^"]*)">', page_html)]
