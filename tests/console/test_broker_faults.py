"""A broker that is down, failing, slow or lying: every console page answers 200 with a
clear banner, promptly; actions report the failure; nothing is a 500."""

import time

import pytest
from django.urls import reverse

from console.models import AuditEntry

PAGES = [
    ("queues", []),
    ("queue", ["/", "orders"]),
    ("exchanges", []),
    ("exchange", ["/", "orders"]),
    ("topology", []),
    ("connections", []),
    ("connection", ["127.0.0.1:1 -> 127.0.0.1:5672"]),
    ("channels", []),
    ("vhosts", []),
]


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("500", "boom from the broker"),
        ("503", "node is booting"),
        ("html", "not JSON"),
        # Timed: alone, after the parallel run, so that other tests' load does not count.
        pytest.param("slow", "did not answer in time", marks=pytest.mark.serial),
    ],
)
def test_it_keeps_every_page_up_with_a_banner(viewer_client, sick_broker, mode, words):
    sick_broker.mode = mode
    for name, args in PAGES:
        started = time.monotonic()
        response = viewer_client.get(reverse(name, args=args))
        elapsed = time.monotonic() - started
        assert response.status_code == 200, name
        page = response.content.decode()
        assert "banner-error" in page, name
        assert words in page, name
        if mode == "slow":
            assert elapsed < 2.8, f"{name} took {elapsed:.1f} s"


def test_it_answers_the_topology_data_with_a_json_error(viewer_client, sick_broker):
    sick_broker.mode = "500"
    response = viewer_client.get(reverse("topology_data"), {"vhost": "/"})
    assert response.status_code == 502
    assert "boom from the broker" in response.json()["error"]


def test_it_reports_failed_actions_and_audits_them(operator_client, sick_broker):
    sick_broker.mode = "503"
    page = operator_client.post(
        reverse("queue_purge", args=["/", "orders"]), follow=True
    ).content.decode()
    assert "Purge of queue &#x27;orders&#x27; failed: The management API failed (503)" in page
    page = operator_client.post(
        reverse("queue_delete", args=["/", "orders"]), follow=True
    ).content.decode()
    assert "was not deleted" in page
    assert set(AuditEntry.objects.values_list("result", flat=True)) == {"failed"}


def test_it_reports_an_amqp_port_that_does_not_answer(operator_client, settings):
    settings.WARREN_AMQP_URL = "amqp://guest:guest@127.0.0.1:1/%2F"
    page = operator_client.post(
        reverse("exchange_publish", args=["/", ""]),
        {"routing_key": "x", "body": "b", "body_encoding": "text", "delivery_mode": "2"},
        follow=True,
    ).content.decode()
    assert "Publish to exchange (AMQP default) key &#x27;x&#x27; failed" in page
    page = operator_client.post(
        reverse("queue_move", args=["/", "a"]), {"mode": "queue", "target": "b"}, follow=True
    ).content.decode()
    assert "Nothing moved from &#x27;a&#x27;" in page
    assert AuditEntry.objects.filter(result="failed").count() == 2
