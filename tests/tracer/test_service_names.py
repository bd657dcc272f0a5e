"""Service names by the ordered service rules (WARREN_SERVICE_RULES), and
`manage.py rename_services` re-deriving them for stored flows with their roll-ups."""

import io
import re

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse

from tests.conftest import unique_name
from tests.live.events import rpc_call
from tracer.models import Flow, LatencyBucket, ServiceMinute
from tracer.store import services, stats, storage
from tracer.store.rollup import RollUp, existing_flows
from tracer.times import now_us

DEFAULT = services.DEFAULT_RULES
ADDRESS_ONLY = ["exchange_routing_key"]


def named(properties, rules=DEFAULT, exchange="", routing_key="celery"):
    return services.name(services.parse_rules(tuple(rules)), exchange, routing_key, properties)


def test_it_names_a_celery_task_by_its_task_header():
    found = named({"headers": {"task": "tasks.add", "id": "x"}, "type": "ignored"})
    assert (found.service, found.rule_label) == ("tasks.add", "Celery task header")


def test_it_falls_back_to_the_type_property_then_exchange_and_routing_key():
    assert named({"type": "GetWeather"}).service == "GetWeather"
    found = named({"headers": {"other": 1}}, exchange="amq.topic", routing_key="weather.ohio")
    assert (found.service, found.rule) == ("amq.topic / weather.ohio", "exchange_routing_key")


def test_it_passes_over_a_type_that_names_the_kind_of_message_not_the_operation():
    # aio-pika's RPC pattern sends type "call" with every request, whatever the method.
    assert named({"type": "call"}, routing_key="multiply").service == "multiply"
    assert named({"type": "Response"}, routing_key="multiply").service == "multiply"


def test_it_reads_a_header_rule_and_a_header_the_tap_kept_as_bytes():
    rules = ["header:x-operation", "exchange_routing_key"]
    assert named({"headers": {"x-operation": "resize"}}, rules).service == "resize"
    as_bytes = {"headers": {"x-operation": {"$bytes": "cmVzaXpl"}}}  # b"resize"
    assert named(as_bytes, rules).service == "resize"
    # A payload-sized value or a number is no name: the next rule answers.
    assert named({"headers": {"x-operation": "x" * 500}}, rules).service == "celery"
    assert named({"headers": {"x-operation": 7}}, rules).service == "celery"


def test_it_stops_at_exchange_and_routing_key_and_always_ends_with_it():
    assert services.parse_rules(("type", "exchange_routing_key", "celery_task")) == (
        "type",
        "exchange_routing_key",
    )
    assert services.parse_rules(("type",)) == ("type", "exchange_routing_key")


@override_settings(WARREN_SERVICE_RULES=["celery_task", "typo"])
def test_it_refuses_a_misspelt_rule_naming_it():
    with pytest.raises(ImproperlyConfigured, match="'typo' is not a service rule"):
        services.configured_rules()


def _store(*calls):
    return storage.store_batch([event for call in calls for event in call], timeout_s=30)


def _celery_call(vhost, task, latency_ms=5.0):
    return rpc_call(
        vhost, routing_key="celery", headers={"task": task, "id": "t"}, latency_ms=latency_ms
    )[1]


@pytest.mark.django_db
def test_it_stores_celery_flows_under_their_task_names():
    vhost = unique_name("svc")
    typed = rpc_call(vhost, routing_key="rpc_queue", properties={"type": "Resize"})[1]
    _store(_celery_call(vhost, "tasks.add"), _celery_call(vhost, "tasks.mul"), typed)
    names = set(Flow.objects.filter(vhost=vhost).values_list("service", flat=True))
    assert names == {"tasks.add", "tasks.mul", "Resize"}
    assert {entry["service"] for entry in stats.service_stats(vhost=vhost)} == names


def _recount(vhost):
    """The roll-ups as a recount of the stored flows gives them."""
    rollup = RollUp()
    from django.db import connection

    with connection.cursor() as cursor:
        ids = list(Flow.objects.filter(vhost=vhost).values_list("id", flat=True))
        for row in existing_flows(cursor, ids).values():
            rollup.change(None, row)
    minutes = {
        (service, row.calls, row.timeouts, row.late, row.answered, round(row.latency_sum_ms, 6))
        for (_, service, _), row in rollup.minutes.items()
    }
    buckets = {(key[1], key[3], count) for key, count in rollup.buckets.items() if count}
    return minutes, buckets


def _stored_rollups(vhost):
    minutes = {
        (row.service, row.calls, row.timeouts, row.late, row.answered, round(row.latency_sum_ms, 6))
        for row in ServiceMinute.objects.filter(vhost=vhost)
    }
    buckets = {
        (row.service, row.bucket, row.count)
        for row in LatencyBucket.objects.filter(vhost=vhost)
        if row.count
    }
    return minutes, buckets


@pytest.mark.django_db(transaction=True)
def test_it_renames_stored_flows_and_moves_their_rollups_with_them(viewer_client):
    vhost = unique_name("svc")
    with override_settings(WARREN_SERVICE_RULES=ADDRESS_ONLY):
        calls = [_celery_call(vhost, "tasks.add", ms) for ms in (4.0, 6.0, 8.0)]
        calls += [_celery_call(vhost, "tasks.slow", ms) for ms in (900.0, 1100.0)]
        _store(*calls)
    assert set(Flow.objects.filter(vhost=vhost).values_list("service", flat=True)) == {"celery"}
    page = viewer_client.get(reverse("latency"), {"vhost": vhost, "window": "15m"})
    assert "earlier rules" in page.content.decode()  # named otherwise than the rules say now

    out = io.StringIO()
    call_command("rename_services", "--vhost", vhost, "--dry-run", stdout=out)
    assert "Would rename 5 of 5 flows." in out.getvalue()
    assert set(Flow.objects.filter(vhost=vhost).values_list("service", flat=True)) == {"celery"}

    out = io.StringIO()
    call_command("rename_services", "--vhost", vhost, stdout=out)
    text = out.getvalue()
    assert re.search(r"5 of 5 flows read \(100 %\), 5 renamed", text)
    assert "celery → tasks.add: 3 flows" in text and "Renamed 5 of 5 flows." in text
    by_service = {e["service"]: e for e in stats.service_stats(vhost=vhost)}
    assert set(by_service) == {"tasks.add", "tasks.slow"}
    assert (by_service["tasks.add"]["count"], by_service["tasks.add"]["max_ms"]) == (3, 8.0)
    assert _stored_rollups(vhost) == _recount(vhost)
    assert not ServiceMinute.objects.filter(vhost=vhost, service="celery").exists()

    page = viewer_client.get(reverse("latency"), {"vhost": vhost, "window": "15m"}).content
    row = page.decode().split('data-service="tasks.add"')[1].split("</tr>")[0]
    assert "Celery task header" in row

    out = io.StringIO()
    call_command("rename_services", "--vhost", vhost, stdout=out)
    assert "Renamed 0 of 5 flows." in out.getvalue()


@pytest.mark.django_db
def test_it_keeps_the_rollup_maximum_true_after_a_rename():
    vhost = unique_name("svc")
    with override_settings(WARREN_SERVICE_RULES=ADDRESS_ONLY):
        start = now_us() - 5_000_000
        fast = rpc_call(vhost, routing_key="celery", latency_ms=3.0, start_us=start)[1]
        slow = _celery_call(vhost, "tasks.slow", 700.0)
        _store(fast, slow)
    call_command("rename_services", "--vhost", vhost, stdout=io.StringIO())
    # celery keeps the one call no rule renames; its minute's maximum is that call's.
    (left,) = [e for e in stats.service_stats(vhost=vhost) if e["service"] == "celery"]
    assert (left["count"], left["max_ms"]) == (1, 3.0)
    assert ServiceMinute.objects.get(vhost=vhost, service="celery").latency_max_ms == 3.0
    assert _stored_rollups(vhost) == _recount(vhost)
