"""Replay figures for /metrics (registered in ReplayConfig.ready; tracer/export/metrics.py).

Read from the stored jobs, whose counters are exact (updated with each item),
so every Warren process answers the same.
"""

from collections.abc import Iterator

from django.db.models import Count, Sum
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from replay.models import ReplayJob

MESSAGE_STATES = ("sent", "confirmed", "failed")


def collect() -> Iterator[Metric]:
    jobs = GaugeMetricFamily("warren_replay_jobs", "Replay jobs by state.", labels=["state"])
    counted = dict(ReplayJob.objects.values_list("status").annotate(n=Count("id")))
    for state, _ in ReplayJob.STATES:
        jobs.add_metric([state], float(counted.get(state, 0)))
    yield jobs
    totals = ReplayJob.objects.aggregate(**{state: Sum(state) for state in MESSAGE_STATES})
    messages = CounterMetricFamily(
        "warren_replay_messages",
        "Messages replayed: sent (published), confirmed by the broker, failed.",
        labels=["state"],
    )
    for state in MESSAGE_STATES:
        messages.add_metric([state], totals[state] or 0)
    yield messages
