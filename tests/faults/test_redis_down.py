"""Redis away for a while: the tap keeps storing, queued replays run when it returns.

Redis is shared, so it is never stopped: the tap and the Celery worker reach
it through a TCP forwarder (tests/live/proxy.py) that the test stops and
starts again, as a dead and a recovered Redis would look to them. (The live
publisher's own outage test is in tests/live/test_publisher.py.)
"""

import json
import time
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings

from tests.live.proxy import TcpProxy
from tests.polling import wait_until
from tests.replay.helpers import Broker, capture_many, trace_event
from tests.replay.worker import Worker
from tests.tracer.tapping import TapProcess, client
from tracer.models import Message

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def redis_proxy():
    real = urlsplit(django_settings.REDIS_URL)
    proxy = TcpProxy(real.port or 6379).start()
    proxy.url_with_db = f"redis://127.0.0.1:{proxy.port}{real.path or '/0'}"
    yield proxy
    proxy.stop()


def _publish(vhost, first, count):
    connection = client(vhost)
    channel = connection.channel()
    for number in range(first, first + count):
        channel.basic_publish("", "nowhere", b"%d" % number)
    connection.close()


def _stored(vhost):
    return Message.objects.filter(vhost=vhost).count()


@pytest.mark.serial  # timed: alone, after the parallel run
def test_the_tap_keeps_storing_while_redis_is_away(scratch_vhost, redis_proxy):
    tap = TapProcess(scratch_vhost, env={"REDIS_URL": redis_proxy.url_with_db}).start()
    try:
        _publish(scratch_vhost, 0, 100)
        wait_until(
            lambda: _stored(scratch_vhost) == 100, what="events before the outage", timeout=15.0
        )
        redis_proxy.stop()
        away = time.monotonic()
        _publish(scratch_vhost, 100, 100)
        wait_until(
            lambda: _stored(scratch_vhost) == 200, what="events while Redis is away", timeout=15.0
        )
        stored_in = time.monotonic() - away
        redis_proxy.start()
        _publish(scratch_vhost, 200, 100)
        wait_until(
            lambda: _stored(scratch_vhost) == 300, what="events after Redis returned", timeout=15.0
        )
        assert tap.process.poll() is None
    finally:
        tap.stop()
    print(f"\nRedis away: 100 events stored {stored_in:.2f} s after it went")
    assert stored_in < 5
    bodies = sorted(int(bytes(b)) for b in Message.objects.values_list("body", flat=True))
    assert bodies == list(range(300))


def _status(client_, job_id):
    return client_.get(f"/api/replays/{job_id}").json()


def test_a_replay_queued_while_redis_is_away_runs_when_it_returns(
    scratch_vhost, redis_proxy, operator_client, settings, monkeypatch
):
    broker = Broker(scratch_vhost)
    try:
        queue = broker.queue()
        messages = capture_many(
            [trace_event(scratch_vhost, routing_key=queue, body=b"%d" % n) for n in range(20)]
        )
        monkeypatch.setenv("REDIS_URL", redis_proxy.url_with_db)
        with Worker() as worker:
            settings.WARREN_REPLAY_QUEUE = worker.queue
            redis_proxy.stop()
            created = operator_client.post(
                "/api/replays",
                json.dumps({"message_ids": [m.id for m in messages], "rate_per_s": 100}),
                content_type="application/json",
            )
            assert created.status_code == 202, created.content
            job_id = created.json()["id"]
            time.sleep(3)
            assert _status(operator_client, job_id)["status"] == "queued"
            assert broker.depth(queue) == 0
            redis_proxy.start()
            returned = time.monotonic()
            try:
                wait_until(
                    lambda: _status(operator_client, job_id)["status"] == "done",
                    timeout=60,
                    interval=0.2,
                    what="the replay to be done",
                )
            except AssertionError as error:
                raise AssertionError(f"{error}\n{worker.output()[-3000:]}") from None
            ran_after = time.monotonic() - returned
        final = _status(operator_client, job_id)
        assert (final["sent"], final["confirmed"], final["failed"]) == (20, 20, 0)
        assert sorted(int(body) for _, body in broker.take(queue)) == list(range(20))
        print(f"\nreplay queued while Redis was away: done {ran_after:.1f} s after it returned")
    finally:
        broker.close()
