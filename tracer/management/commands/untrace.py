"""python manage.py untrace [VHOST …] — switch tracing off and remove Warren's queues.

Tracing stays on after the tap stops (events wait in the bounded tap queue for
the next one); this is the way to take Warren off a vhost for good. Without a
vhost: the traced vhosts of the settings (WARREN_TRACE_VHOSTS; `*`: every vhost).
"""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rabbit.brokers import default_broker
from rabbit.management_http import BrokerError, BrokerNotFound
from tracer.tap.untrace import taps_reading, untrace


class Command(BaseCommand):
    help = "Switch tracing off on every node and remove Warren's tap queue, for each vhost."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("vhosts", nargs="*", metavar="VHOST", help="Default: the traced ones.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Even while a tap reads the vhost (it would switch tracing on again).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        client = default_broker().client()
        vhosts: list[str] = options["vhosts"] or list(settings.WARREN_TRACE_VHOSTS)
        try:
            if "*" in vhosts:
                vhosts = sorted(vhost["name"] for vhost in client.vhosts())
        except BrokerError as error:
            raise CommandError(f"The broker's management API: {error.message}") from error
        running = taps_reading(vhosts)
        if running and not options["force"]:
            taps = ", ".join(f"pid {tap.pid} on {tap.host or 'this host'}" for tap in running)
            raise CommandError(
                f"A tap is reading these vhosts ({taps}): it would switch tracing on again. "
                "Stop it first, or give --force."
            )
        incomplete = []
        for vhost in vhosts:
            try:
                done = untrace(client, vhost, settings.WARREN_TAP_QUEUE)
            except BrokerNotFound:
                self.stdout.write(f"{vhost}: no such vhost")
                continue
            except BrokerError as error:
                raise CommandError(f"{vhost}: {error.message}") from error
            self.stdout.write(f"{vhost}: tracing " + ", ".join(done.nodes or ["(no node)"]))
            for removed in done.removed:
                self.stdout.write(f"{vhost}: removed {removed}")
            for absent in done.absent:
                self.stdout.write(f"{vhost}: {absent} was not there")
            if not done.complete:
                incomplete.append(vhost)
        if incomplete:
            raise CommandError(
                "Tracing may still be on in " + ", ".join(repr(v) for v in incomplete) + ": "
                "a node did not answer or did not switch it off (see above); run this again."
            )
