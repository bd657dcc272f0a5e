"""Replays in headless Chromium: start a bulk replay from the page and watch it finish."""

import json
import threading

import pytest

from rabbit.brokers import default_amqp_url
from replay import engine, jobs, spec
from tests.conftest import screenshot
from tests.polling import wait_until
from tests.replay.helpers import capture_many, operator_request, trace_event
from tests.replay.worker import Worker
from tracer.times import now_us
from workloads.engine import Context
from workloads.fibonacci_rpc import QUEUE, FibonacciServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def bar(page, attribute="value"):
    return int(float(page.locator("#replay-bar").get_attribute(attribute)))


def wait_for_bar(page, condition, timeout_s=10.0, what="the progress bar"):
    """The progress bar's value once `condition(value)` holds (polled every 50 ms)."""
    return wait_until(lambda: bar(page), check=condition, timeout=timeout_s, what=what)


def test_it_starts_a_bulk_replay_and_watches_the_progress_bar_reach_the_end(
    page_as, operator, live_server, broker, settings
):
    total = 240
    queue = broker.queue(exchange="orders", key="order.created")
    start = now_us() - 600_000_000
    capture_many(
        [
            trace_event(
                broker.vhost,
                exchange="orders",
                routing_key="order.created",
                body=b'{"order": %d, "password": "hunter2"}' % n,
                props={"content_type": "application/json", "headers": {"x-tenant": "acme"}},
                at_us=start + n * 250_000,
            )
            for n in range(total)
        ]
    )
    page = page_as(operator)
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("dialog", lambda dialog: dialog.accept())

    with Worker() as worker:
        settings.WARREN_REPLAY_QUEUE = worker.queue
        page.goto(f"{live_server.url}/replays/new?vhost={broker.vhost}&exchange=orders")
        assert page.locator("#replay-count").inner_text() == str(total)
        assert page.locator("[data-shown-when='target=exchange']").is_hidden()
        page.check("input[name=target][value=exchange]")
        assert page.locator("[data-shown-when='target=exchange']").is_visible()
        page.check("input[name=target][value=original]")
        page.fill("input[name=rate_per_s]", "80")
        page.fill("input[name=confirm_count]", str(total))
        screenshot(page, "replay-new")
        page.click("#start-replay")

        page.wait_for_url(f"{live_server.url}/replays/*/")
        # The page polls; its CSP forbids evaluating strings, so the test polls too.
        seen = wait_for_bar(page, lambda value: value > 20, what="the bar past 20")
        screenshot(page, "replay-running")
        assert 20 < seen < total
        final = wait_for_bar(page, lambda value: value == total, 20, what="the bar at the end")
        page.wait_for_selector("#replay-status:text('done')", timeout=10_000)

    assert final == total
    assert bar(page, "max") == total
    assert page.locator("#replay-confirmed").inner_text() == str(total)
    assert page.locator("#replay-failed").inner_text() == "0"
    assert "hunter2" not in page.content()
    screenshot(page, "replay-done")
    assert broker.wait_depth(queue, total) == total
    assert errors == []

    page.goto(f"{live_server.url}/replays/")
    assert page.locator("table.replay-jobs tbody tr").count() == 1
    screenshot(page, "replays")


def test_it_shows_an_rpc_regression_and_a_reply_diff(page_as, operator, live_server, broker):
    broker.channel.queue_declare(QUEUE)
    start = now_us() - 600_000_000
    events = []
    for i, n in enumerate([5, 8, 13, 21, 34]):
        corr = f"corr-{i}"
        answer = b'{"n": %d, "fibonacci": %d, "server": "demo fibonacci server 1"}' % (
            n,
            [5, 21, 233, 10946, 5702887][i] + (1 if i == 3 else 0),  # one wrong answer back then
        )
        events += [
            trace_event(
                broker.vhost,
                routing_key=QUEUE,
                body=b'{"n": %d}' % n,
                props={"correlation_id": corr, "reply_to": "amq.gen-old"},
                at_us=start + i * 1_000_000,
            ),
            trace_event(
                broker.vhost,
                routing_key="amq.gen-old",
                body=answer,
                props={"correlation_id": corr},
                at_us=start + i * 1_000_000 + (3 + i * 4) * 1000,
            ),
        ]
    capture_many(events)
    context = Context(default_amqp_url(), broker.vhost, threading.Event(), reconnect=False)
    server = FibonacciServer(context, "fibonacci server 1")
    server.start()
    assert server.ready.wait(10)
    try:
        data = {
            "filter": {"vhost": broker.vhost, "routing_key": QUEUE},
            "await_reply": True,
            "reply_timeout_s": 5,
            "ignore_fields": ["server", "reply_to", "computed_in_ms"],
        }
        job = jobs.create_job(operator_request(operator), spec.from_api(data))
        engine.run_job(job.id)
    finally:
        context.stop.set()
        server.join(5)

    page = page_as(operator)
    page.goto(f"{live_server.url}/replays/{job.id}/")
    assert page.locator(".tile-bad .value").inner_text() == "1"  # one answer changed
    screenshot(page, "replay-rpc-report")
    page.click("table.replay-items a:has(.pill.bad)")
    page.wait_for_selector("#reply-diff")
    assert "10947" in page.locator("#reply-diff .diff-del").inner_text()
    assert "10946" in page.locator("#reply-diff .diff-add").inner_text()
    screenshot(page, "replay-rpc-diff")


def test_it_edits_one_message_checks_its_json_and_shows_a_dry_run(
    page_as, operator, live_server, broker, settings
):
    (message,) = capture_many(
        [
            trace_event(
                broker.vhost,
                exchange="amq.topic",
                routing_key="weather.ohio",
                body=b'{"city": "Columbus", "api_key": "k-123", "days": 3}',
                props={
                    "content_type": "application/json",
                    "message_id": "w-77",
                    "headers": {"token": "s3cret", "x-region": "midwest"},
                },
            )
        ]
    )
    weather = broker.queue(exchange="amq.topic", key="weather.#", exchange_type="topic")
    page = page_as(operator)
    page.on("dialog", lambda dialog: dialog.accept())
    worker = Worker().start()
    settings.WARREN_REPLAY_QUEUE = worker.queue
    try:
        edit_and_dry_run(page, live_server, message)
        screenshot(page, "replay-dry-run")
        assert broker.depth(weather) == 0
        page.click("#send-for-real")
        page.wait_for_selector("#replay-status:text('done')", timeout=20_000)
    finally:
        worker.stop()

    assert page.locator("#replay-confirmed").inner_text() == "1"
    ((props, body),) = broker.take(weather)
    # The mask left in the edit went out as the original value; message_id was dropped.
    assert json.loads(body) == {"city": "Dayton", "api_key": "k-123", "days": 5}
    assert (props.message_id, props.headers["token"]) == (None, "s3cret")


def edit_and_dry_run(page, live_server, message):
    page.goto(f"{live_server.url}/replays/new?message={message.id}")
    assert page.locator("textarea[name=body_text]").is_hidden()
    page.check("input[name=body_mode][value=replace]")
    body = page.locator("textarea[name=body_text]")
    assert body.is_visible()
    assert "k-123" not in body.input_value() and "********" in body.input_value()
    assert page.locator("select[name=body_format]").input_value() == "json"
    body.fill('{"city": "Dayton", "api_key": "********", "days": }')
    page.check("input[name=keep_message_id][value=drop]")
    page.check("input[name=dry_run]")
    page.click("#start-replay")

    error = page.locator("textarea[name=body_text] + .field-error")
    assert "The body is not valid JSON" in error.inner_text()
    screenshot(page, "replay-new-single-invalid")
    page.locator("textarea[name=body_text]").fill(
        '{"city": "Dayton", "api_key": "********", "days": 5}'
    )
    page.click("#start-replay")
    page.wait_for_url(f"{live_server.url}/replays/*/")
    page.wait_for_selector("#replay-status:text('done')", timeout=20_000)

    page.click("details.planned summary")
    planned = page.locator("details.planned pre").first.inner_text()
    assert f'"x-warren-replay-of": {message.id}' in planned
    assert '"token": "********"' in planned and "s3cret" not in page.content()
    assert "message_id" not in planned
    body = page.locator("details.planned pre.planned-body").inner_text()
    assert '"city": "Dayton"' in body and '"api_key": "********"' in body  # masked on the page
    assert page.locator("#replay-planned").inner_text() == "1"
    assert page.locator("#replay-sent").inner_text() == "0"
