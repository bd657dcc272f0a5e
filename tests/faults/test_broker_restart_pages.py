"""RabbitMQ restarted (stop_app / start_app): pages show the outage, then recover.

The tap's own restart test (tests/tracer/test_broker_restart.py) checks the
reconnection and the gap in the database; this one looks at what a person
sees meanwhile. Disruptive for a few seconds, so it is the only broker
restart here and the broker is started again whatever happens.
"""

import subprocess
import time

import pytest

from tests.polling import wait_until
from tests.tracer.tapping import TapProcess, client
from tracer.models import Message, TapGap

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CONSOLE_PAGES = ["/", "/queues/", "/exchanges/", "/connections/"]
TRACER_PAGES = ["/messages/", "/flows/", "/latency/"]


def rabbitmqctl(*args):
    return subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=60)


def _answers(mgmt):
    try:
        mgmt.overview()
    except Exception:  # noqa: BLE001 - not up yet
        return False
    return True


def _publish(vhost, count):
    connection = client(vhost)
    channel = connection.channel()
    for number in range(count):
        channel.basic_publish("", "nowhere", b"%d" % number)
    connection.close()


def _timed(client_, path):
    started = time.monotonic()
    response = client_.get(path)
    return response, time.monotonic() - started


def test_it_shows_the_outage_then_recovers(scratch_vhost, mgmt, viewer_client):
    with TapProcess(scratch_vhost) as tap:
        _publish(scratch_vhost, 10)
        wait_until(
            lambda: Message.objects.filter(vhost=scratch_vhost).count() == 10,
            timeout=15.0,
            what="10 events stored",
        )
        during = {}
        try:
            assert rabbitmqctl("stop_app").returncode == 0
            for path in CONSOLE_PAGES + TRACER_PAGES + ["/api/health"]:
                during[path] = _timed(viewer_client, path)
        finally:
            started = rabbitmqctl("start_app")
            wait_until(lambda: _answers(mgmt), timeout=60, interval=0.2, what="the broker")
        assert started.returncode == 0, started.stderr
        back = time.monotonic()
        tap.wait_connected(timeout=30)
        reconnected_s = time.monotonic() - back
        _publish(scratch_vhost, 10)
        wait_until(
            lambda: Message.objects.filter(vhost=scratch_vhost).count() == 20,
            timeout=20,
            what="events after the restart",
        )
        after = {path: _timed(viewer_client, path) for path in CONSOLE_PAGES + TRACER_PAGES}

    for path, (response, elapsed) in during.items():
        assert response.status_code == 200, f"{path} during the outage: {response.status_code}"
        assert elapsed < 12, f"{path} took {elapsed:.1f} s"
    for path in CONSOLE_PAGES:
        assert "banner-error" in during[path][0].content.decode(), f"{path}: no banner"
    assert during["/api/health"][0].json()["status"] == "degraded"
    for path, (response, _) in after.items():
        assert response.status_code == 200
        assert "banner-error" not in response.content.decode(), f"{path} still shows the outage"
    gap = TapGap.objects.filter(vhost=scratch_vhost).first()
    assert gap is not None
    assert str(gap) in after["/messages/"][0].content.decode()
    print(
        f"\nbroker restart: console pages {max(t for _, t in during.values()):.2f} s at worst "
        f"with the banner; tap reconnected {reconnected_s:.1f} s after start_app; gap: {gap}"
    )
