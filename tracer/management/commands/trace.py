"""python manage.py trace VHOST … — the tap traces these vhosts (or, with --off, no longer).

Stores the choice the console's Vhosts page also makes (tracer/store/traced.py);
a running tap follows it within seconds. `*` is every vhost. Without a vhost it
lists the stored choice.
"""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from tracer.store import traced


class Command(BaseCommand):
    help = "Choose the vhosts Warren's tap traces (stored; the running tap follows)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("vhosts", nargs="*", metavar="VHOST", help="`*` is every vhost.")
        parser.add_argument("--off", action="store_true", help="Stop tracing these vhosts.")

    def handle(self, *args: Any, **options: Any) -> None:
        seed = settings.WARREN_TRACE_VHOSTS
        try:
            for vhost in options["vhosts"]:
                changed = traced.choose(vhost, not options["off"], seed, by="manage.py trace")
                self.stdout.write(self._said(vhost, not options["off"], changed))
            wanted = traced.wanted_vhosts(seed)
        except DatabaseError as error:
            raise CommandError(
                f"The database cannot store the choice ({error}); run `python manage.py migrate`."
            ) from error
        self.stdout.write("Traced vhosts: " + (", ".join(sorted(wanted)) or "none"))

    @staticmethod
    def _said(vhost: str, on: bool, changed: bool) -> str:
        name = "every vhost" if vhost == traced.ALL_VHOSTS else f"vhost {vhost!r}"
        if on:
            state = "now traces" if changed else "already traced"
            return f"Warren {state} {name}: the running tap reads it within seconds."
        state = "no longer traces" if changed else "was not tracing"
        return f"Warren {state} {name}."
