"""python manage.py tap — the firehose consumer (docs/architecture.md).

Runs until SIGTERM or SIGINT, then finishes the batch in hand, commits and
exits (what capture spooled and was not yet stored waits in the spool).
Vhosts, queue and limits come from the settings; options override.
"""

import faulthandler
import logging
import os
import signal
import sys
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tracer.export import runner
from tracer.tap.config import TapConfig
from tracer.tap.priority import run_in_background
from tracer.tap.process import Tap

log = logging.getLogger("tracer.tap")


class Command(BaseCommand):
    help = "Consume the firehose of the traced vhosts: store events, pair RPC flows."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--vhost",
            action="append",
            dest="vhosts",
            help="Vhost to trace (repeat for several; * for all). Default: WARREN_TRACE_VHOSTS.",
        )
        parser.add_argument("--batch-size", type=int, help="Most events per transaction.")
        parser.add_argument("--batch-ms", type=float, help="Longest wait to fill a batch.")
        parser.add_argument("--prefetch", type=int, help="Unacked events in flight per vhost.")
        parser.add_argument("--rpc-timeout", type=float, dest="timeout_s")
        parser.add_argument(
            "--crash-after-batches", type=int, help="(tests) exit after a commit, unreleased"
        )
        parser.add_argument(
            "--crash-capture-after",
            type=int,
            help="(tests) capture exits after this many spool commits, before the ack",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # First, while this is the only thread: every one started later inherits it.
        priority = run_in_background(settings.WARREN_TAP_NICENESS)
        logging.getLogger("tracer").setLevel(logging.INFO)
        log.info("the tap runs %s", priority)
        for name in ("batch_size", "prefetch"):
            if options[name] is not None and options[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be at least 1.")
        config = TapConfig.from_settings(
            vhosts=options["vhosts"],
            batch_size=options["batch_size"],
            batch_ms=options["batch_ms"],
            prefetch=options["prefetch"],
            timeout_s=options["timeout_s"],
            crash_after_batches=options["crash_after_batches"],
            crash_capture_after=options["crash_capture_after"],
            # Without --vhost: the vhosts chosen in the console, seeded by WARREN_TRACE_VHOSTS.
            follow_choice=not options["vhosts"],
        )
        tap = Tap(config)

        def stop(*_: object) -> None:
            if not tap.stopping.is_set():
                faulthandler.dump_traceback_later(config.stop_grace_s, exit=True)
            tap.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        # The tap works in a thread of its own: a signal's handler runs on the main
        # thread only, which here does nothing but wait, so a stop starts its grace
        # at once even while the tap sits in a database call that takes its time.
        failure: list[BaseException] = []

        def work() -> None:
            try:
                tap.run()
            except BaseException as error:  # noqa: BLE001 - handed to the main thread
                failure.append(error)

        worker = threading.Thread(target=work, name="tap")
        exporter = runner.start(tap.stopping)  # /metrics' totals and OTLP spans, a process apart
        worker.start()
        while worker.is_alive():
            worker.join(0.5)
        runner.stop(exporter)
        if failure:
            raise CommandError(f"The tap failed: {failure[0]}") from failure[0]
        # Everything is committed and closed: leave now. The interpreter's own
        # teardown (closing what threads left behind) has been seen to take
        # seconds on a busy disk, past the supervisor's grace.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
