"""python manage.py bench <name> — the tracer's benchmarks (loopback only, bounded).

Each prints a table: figure, goal, measured, and the reference measured side by
side in the same run, with the machine's load average. `all` runs them in turn.
"""

import importlib
import time

from django.core.management.base import BaseCommand, CommandError

BENCHMARKS = {
    "keep-up": "benchmarks.keepup",
    "capacity": "benchmarks.capacity",
    "capture": "benchmarks.capture",
    "overhead": "benchmarks.overhead",
    "accuracy": "benchmarks.accuracy",
    "wire": "benchmarks.accuracy_wire",
    "queries": "benchmarks.queries",
    "memory": "benchmarks.memory",
    "export": "benchmarks.export",
}


class Command(BaseCommand):
    help = "Benchmark the tracer: " + ", ".join(BENCHMARKS) + " (or all)."

    def add_arguments(self, parser):
        parser.add_argument("name", choices=[*BENCHMARKS, "all"])
        seen = set()
        for module_name in BENCHMARKS.values():
            module = importlib.import_module(module_name)
            for action in _arguments(module):
                if action[0][0] not in seen:
                    seen.add(action[0][0])
                    parser.add_argument(*action[0], **action[1])

    def handle(self, *args, name, **options):
        from benchmarks.common import BenchError

        names = list(BENCHMARKS) if name == "all" else [name]
        reports = []
        for one in names:
            module = importlib.import_module(BENCHMARKS[one])
            started = time.monotonic()
            try:
                report = module.run(options, self._out)
            except BenchError as error:
                raise CommandError(str(error)) from None
            self.stdout.write(report.render())
            self.stdout.write(f"  ({one} took {time.monotonic() - started:.0f} s)\n")
            reports.append(report)
        if len(reports) > 1:
            self.stdout.write("\n".join(report.render() for report in reports))

    def _out(self, text):
        self.stdout.write(text)
        self.stdout.flush()


def _arguments(module):
    """What a benchmark module's add_arguments(parser) would add, as (args, kwargs)."""
    collected = []

    class Collector:
        def add_argument(self, *args, **kwargs):
            collected.append((args, kwargs))

    adder = getattr(module, "add_arguments", None)
    if adder is not None:
        adder(Collector())
    return collected
