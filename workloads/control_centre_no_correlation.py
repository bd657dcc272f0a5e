"""Seed workload 2, the older variant: the control centre without correlation ids.

Each client thread has its own exclusive callback queue and one call in flight;
requests and replies carry no correlation id, so replies are matched by order
on the reply_to queue. The machinery lives in control_centre.py.
"""

from workloads.control_centre import plan_without_correlation as plan
from workloads.engine import run_forever_plan

__all__ = ["plan", "run_forever"]


def run_forever(amqp_url, vhost, rate, stop_event, **options):
    run_forever_plan(plan, amqp_url, vhost, rate, stop_event, **options)
