"""The seed workloads by name, and the bounded run that tests use.

    result = run_bounded("fibonacci", amqp_url, vhost, calls=20)
    assert result.unanswered == 0

`WORKLOADS[name].run_forever(amqp_url, vhost, rate, stop_event)` is what
`python manage.py demo` runs.
"""

from workloads import (
    control_centre,
    control_centre_no_correlation,
    direct_reply_to,
    fibonacci_rpc,
    pipes_and_filters,
    sender_receiver,
    slow_failing,
    weather,
)
from workloads.engine import run_bounded_plan

WORKLOADS = {
    "fibonacci": fibonacci_rpc,
    "control_centre": control_centre,
    "control_centre_no_correlation": control_centre_no_correlation,
    "direct_reply_to": direct_reply_to,
    "weather": weather,
    "pipes_and_filters": pipes_and_filters,
    "sender_receiver": sender_receiver,
    "slow_failing": slow_failing,
}


def run_bounded(name, amqp_url, vhost, calls, timeout_s=30.0, **options):
    """Run workload `name` for exactly `calls` client calls (or messages) in `vhost`.

    Starts its servers, then its clients; waits up to `timeout_s` for the
    answers the clients expect; stops every thread (closing its connection) and
    deletes the named queues it declared. `options` are the workload's own
    (e.g. `servers=2`, `rate=10`, slow_failing's `late_delay_s=1.5`); an unknown
    one is a TypeError. Raises WorkloadError when it cannot run.
    """
    try:
        module = WORKLOADS[name]
    except KeyError:
        raise ValueError(f"no workload {name!r}; known: {', '.join(WORKLOADS)}") from None
    return run_bounded_plan(module.plan, amqp_url, vhost, calls, timeout_s, **options)
