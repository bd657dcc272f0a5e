"""The seed workloads of docs/architecture.md as real AMQP clients and servers.

`python manage.py demo` runs them as live traffic; tests run them for a bounded
number of calls with `run_bounded` and compare the clients' records with what
Warren traced.
"""

from workloads.engine import WorkloadError
from workloads.ledger import CallRecord, Ledger, WorkloadResult
from workloads.runner import WORKLOADS, run_bounded

__all__ = ["WORKLOADS", "CallRecord", "Ledger", "WorkloadError", "WorkloadResult", "run_bounded"]
