"""A management API that is slow, failing or speaking nonsense: banner, no hang, no 500.

A small local HTTP server stands in front of nothing and answers the way a
sick broker would; Warren is pointed at it.
"""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("500", "boom from the broker"),
        ("503", "node is booting"),
        ("html", "not JSON"),
        ("lists", "with something else than"),
        # Timed: alone, after the parallel run, so that other tests' load does not count.
        pytest.param("slow", "did not answer in time", marks=pytest.mark.serial),
    ],
)
def test_it_shows_a_banner_and_answers_promptly(viewer_client, sick_broker, mode, words):
    sick_broker.mode = mode
    started = time.monotonic()
    response = viewer_client.get(reverse("overview"))
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    page = response.content.decode()
    assert "banner-error" in page
    assert words in page
    if mode == "slow":
        # The 1 s timeout bounds the wait (overview and nodes are two calls at most).
        assert elapsed < 2.8


def test_it_says_so_when_the_vhosts_come_in_another_shape(viewer_client, sick_broker):
    sick_broker.mode = "lists"
    response = viewer_client.get(reverse("vhosts"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "banner-error" in page
    assert "answered vhosts with something else than a list" in page


def test_it_reports_the_broker_degraded_in_health(viewer_client, sick_broker):
    sick_broker.mode = "500"
    body = viewer_client.get("/api/health").json()
    assert body["status"] == "degraded"
    assert body["broker"]["reachable"] is False
    assert "boom from the broker" in body["broker"]["error"]


@pytest.mark.serial  # timed: alone, after the parallel run
@pytest.mark.django_db(transaction=True)
def test_it_holds_no_worker_past_the_timeout_when_many_ask_at_once(viewer, sick_broker):
    """Eight pages at once against a management API that never answers in time."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections
    from django.test import Client

    sick_broker.mode = "slow"
    paths = ["/", "/queues/", "/exchanges/", "/connections/"] * 2
    readers = []
    for _ in paths:
        reader = Client()
        reader.force_login(viewer)
        readers.append(reader)

    def read(pair):
        reader, path = pair
        started = time.monotonic()
        try:
            response = reader.get(path)
            return (
                response.status_code,
                "banner-error" in response.content.decode(),
                (time.monotonic() - started),
            )
        finally:
            connections.close_all()

    started = time.monotonic()
    with ThreadPoolExecutor(len(paths)) as pool:
        answers = list(pool.map(read, zip(readers, paths, strict=True)))
    elapsed = time.monotonic() - started
    assert all(status == 200 and banner for status, banner, _ in answers), answers
    # Each page makes at most a few calls, each cut at the 1 s timeout.
    assert max(seconds for _, _, seconds in answers) < 4.5
    assert elapsed < 5.0


class _DropsFirstRequest(BaseHTTPRequestHandler):
    """Closes the first connection without an answer, like a broker-side keep-alive timeout."""

    def do_GET(self):  # noqa: N802 - the http.server API
        self.server.requests += 1
        if self.server.requests == 1:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        body = b'{"rabbitmq_version": "9.9.9"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_it_asks_a_get_again_when_the_connection_was_dropped():
    from rabbit.management import ManagementClient

    server = ThreadingHTTPServer(("127.0.0.1", 0), _DropsFirstRequest)
    server.requests = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = ManagementClient(f"http://127.0.0.1:{server.server_port}/", "u", "p", timeout=2)
        assert client.overview()["rabbitmq_version"] == "9.9.9"
        assert server.requests == 2
    finally:
        server.shutdown()
        server.server_close()


def test_it_purges_a_queue_through_the_api(mgmt, scratch_vhost):
    mgmt.declare_queue(scratch_vhost, "to-purge")
    mgmt.publish(scratch_vhost, "", "to-purge", "one")
    mgmt.publish(scratch_vhost, "", "to-purge", "two")
    mgmt.purge(scratch_vhost, "to-purge")
    # basic.get through the API answers what is in the queue now, without waiting for stats.
    assert mgmt.peek(scratch_vhost, "to-purge", count=5) == []
