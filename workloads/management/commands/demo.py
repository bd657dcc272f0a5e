"""`python manage.py demo`: the seed workloads (docs/architecture.md) as live traffic until stopped.

Runs in its own vhost (`warren-demo` unless --vhost), created through the
management API when missing, and adds that vhost to the vhosts Warren traces
(`manage.py trace`, the same stored choice as the Vhosts page), so a running
tap starts reading it within seconds. --trace also switches the firehose on
at once, for a broker watched without a tap.
"""

import signal
import threading
import time

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from rabbit.brokers import default_amqp_url, default_broker
from rabbit.management_http import BrokerError, BrokerNotFound
from workloads import WORKLOADS, Ledger

DEFAULT_VHOST = "warren-demo"
JOIN_TIMEOUT_S = 30.0


def _positive(text):
    value = float(text)
    if not value > 0:
        raise ValueError(text)
    return value


class Command(BaseCommand):
    help = "Run the seed workloads against the broker, in their own vhost, until stopped."

    def add_arguments(self, parser):
        parser.add_argument(
            "--rate",
            type=_positive,
            default=2.0,
            help="calls (or messages) per second per workload (default 2)",
        )
        parser.add_argument(
            "--only",
            default="",
            help=f"comma-separated workloads to run (default all: {', '.join(WORKLOADS)})",
        )
        parser.add_argument("--vhost", default=DEFAULT_VHOST, help="vhost (default warren-demo)")
        parser.add_argument(
            "--trace", action="store_true", help="switch the firehose on for the vhost"
        )
        parser.add_argument(
            "--duration", type=_positive, default=None, help="stop after this many seconds"
        )
        parser.add_argument(
            "--report-every",
            type=_positive,
            default=10.0,
            help="seconds between progress lines (default 10)",
        )

    def handle(self, *args, rate, only, vhost, trace, duration, report_every, **options):
        names = self._names(only)
        self._prepare_vhost(vhost, trace)
        stop = threading.Event()
        restore = self._stop_on_signals(stop)
        ledgers = {name: Ledger(keep=False) for name in names}
        threads = [
            threading.Thread(
                target=WORKLOADS[name].run_forever,
                args=(default_amqp_url(), vhost, rate, stop),
                kwargs={"ledger": ledgers[name]},
                name=f"workload {name}",
                daemon=True,
            )
            for name in names
        ]
        self.stdout.write(
            f"Running {len(names)} workloads in vhost {vhost!r} at {rate:g}/s each: "
            f"{', '.join(names)}. Ctrl-C stops."
        )
        for thread in threads:
            thread.start()
        try:
            self._wait(stop, duration, report_every, ledgers)
        finally:
            stop.set()
            deadline = time.monotonic() + JOIN_TIMEOUT_S
            for thread in threads:
                thread.join(max(0.1, deadline - time.monotonic()))
            restore()
        still_running = [thread.name for thread in threads if thread.is_alive()]
        self.stdout.write("Stopped. " + self._progress(ledgers))
        if still_running:
            raise CommandError(f"did not stop in time: {', '.join(still_running)}")

    def _names(self, only):
        if not only.strip():
            return list(WORKLOADS)
        names = [name.strip() for name in only.split(",") if name.strip()]
        unknown = [name for name in names if name not in WORKLOADS]
        if unknown:
            raise CommandError(
                f"unknown workload {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}"
            )
        return list(dict.fromkeys(names))

    def _prepare_vhost(self, vhost, trace):
        client = default_broker().client()
        try:
            try:
                client.vhost(vhost)
            except BrokerNotFound:
                client.create_vhost(vhost, description="Warren demo: the seed workloads")
                self.stdout.write(f"Created vhost {vhost!r}.")
            if trace:
                client.set_tracing(vhost, True)
                self.stdout.write(f"Tracing is on for vhost {vhost!r}.")
        except BrokerError as error:
            raise CommandError(f"the broker's management API: {error.message}") from error
        # By name: the tracer's command stores the choice (workloads import no tracer).
        try:
            call_command("trace", vhost, stdout=self.stdout)
        except (DatabaseError, CommandError) as error:
            # The workloads run anyway: only Warren's choice of vhosts could not be stored.
            self.stderr.write(
                f"Could not store {vhost!r} among the vhosts Warren traces ({error}); "
                "switch it on from the Vhosts page."
            )

    def _stop_on_signals(self, stop):
        """SIGINT and SIGTERM stop the workloads cleanly; returns how to undo that."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def handle(signum, frame):
            stop.set()

        for sig in previous:
            signal.signal(sig, handle)

        def restore():
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def _wait(self, stop, duration, report_every, ledgers):
        started = time.monotonic()
        next_report = started + report_every
        while not stop.is_set():
            now = time.monotonic()
            until = next_report
            if duration is not None:
                if now - started >= duration:
                    return
                until = min(until, started + duration)
            stop.wait(max(0.0, until - now))
            if time.monotonic() >= next_report and not stop.is_set():
                self.stdout.write(self._progress(ledgers))
                next_report += report_every

    @staticmethod
    def _progress(ledgers):
        return " | ".join(
            f"{name} {ledger.sent_count} sent, {ledger.answered_count} answered"
            for name, ledger in ledgers.items()
        )
