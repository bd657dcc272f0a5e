"""Helpers for broker-console tests: bounded waits on the management API's statistics.

The management API refreshes its figures every 5 s (collect_statistics_interval),
so a count read right after a publish may still be the old one. wait_for polls
with a bound; it fails with the last value seen, never hangs.
"""

import time

from rabbit.management_http import BrokerNotFound

HOSTILE_QUEUE = 'q <script>alert("q")</script> / 50% ü'
HOSTILE_EXCHANGE = 'ex <b>"x"</b> / 100% é'
HOSTILE_KEY = "k.<i>.#"


def wait_for(fetch, predicate, timeout=12.0, interval=0.5, what="the condition"):
    """Poll fetch() until predicate(value) holds; returns the value or fails with it."""
    deadline = time.monotonic() + timeout
    value = None
    while True:
        try:
            value = fetch()
        except BrokerNotFound as error:
            value = error
        if not isinstance(value, Exception) and predicate(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}; last seen: {value!r}")
        time.sleep(interval)


def messages_in(mgmt, vhost, queue):
    """The queue's message count as the management API reports it (may be None at first)."""
    return mgmt.queue(vhost, queue).get("messages")


def wait_for_messages(mgmt, vhost, queue, expected, timeout=12.0):
    """Wait until the management API reports exactly `expected` messages in queue."""
    return wait_for(
        lambda: messages_in(mgmt, vhost, queue),
        lambda count: count == expected,
        timeout=timeout,
        what=f"{expected} messages in {queue!r}",
    )


def wait_for_stats(mgmt, vhost, queue, timeout=12.0):
    """Wait until the broker has statistics for a new queue."""
    return wait_for(
        lambda: mgmt.queue(vhost, queue),
        lambda raw: "messages" in raw,
        timeout=timeout,
        what=f"statistics of {queue!r}",
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
