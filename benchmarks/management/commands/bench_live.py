"""python manage.py bench_live — event-to-screen delay and page load under firehose traffic.

Starts Daphne, the tap (on a scratch vhost it creates and deletes) and a
Fibonacci RPC workload at the asked rate (four firehose events a call), opens
Live flows in headless Chromium, and prints the delay from the tap's stamp to
the row on screen (p50/p95) and the share of time the page's main thread was
busy. Loopback only; not part of the test suite.
"""

from django.core.management.base import BaseCommand, CommandError

from benchmarks.live import run_live_benchmark


class Command(BaseCommand):
    help = "Measure live flows in the browser at firehose rates (loopback only, ~40 s)."

    def add_arguments(self, parser):
        parser.add_argument("--events-per-s", type=float, default=2000.0)
        parser.add_argument("--seconds", type=float, default=30.0)

    def handle(self, *args, **options):
        rate, seconds = options["events_per_s"], options["seconds"]
        if not 1 <= rate <= 20_000:
            raise CommandError("--events-per-s must be between 1 and 20000.")
        if not 1 <= seconds <= 120:
            raise CommandError("--seconds must be between 1 and 120 (the run is bounded).")
        try:
            result = run_live_benchmark(rate, seconds, report=self.stdout.write)
        except (RuntimeError, TimeoutError) as error:
            raise CommandError(str(error)) from error
        for line in result.lines():
            self.stdout.write(line)
        goals = (result.delay_p95_ms or 0) < 300 and result.busy_share < 0.5
        self.stdout.write(
            self.style.SUCCESS("goals met") if goals else self.style.WARNING("goals missed")
        )
