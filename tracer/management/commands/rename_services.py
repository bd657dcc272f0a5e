"""manage.py rename_services: stored flows named again under WARREN_SERVICE_RULES.

Flows stored before the rules changed keep the names the old rules gave; this
re-derives each from its request (tracer.store.renaming), moving its roll-ups
with it, and shows its progress. --dry-run only says what would change.
"""

from django.core.management.base import BaseCommand, CommandParser

from tracer.store import renaming, services


class Command(BaseCommand):
    help = "Re-derive the service name of stored flows under the service rules in force."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--vhost", help="Only the flows of this vhost (default: every vhost).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would be renamed; change nothing."
        )

    def handle(self, *args: object, **options: object) -> None:
        vhost = options["vhost"] if isinstance(options["vhost"], str) else None
        apply = not options["dry_run"]
        rules = ", ".join(services.rule_label(rule) for rule in services.configured_rules())
        self.stdout.write(f"Service rules: {rules}.")

        def report(progress: renaming.Progress) -> None:
            share = 100 * progress.read / progress.total if progress.total else 100
            verb = "renamed" if apply else "to rename"
            self.stdout.write(
                f"{progress.read:,} of {progress.total:,} flows read ({share:.0f} %), "
                f"{progress.renamed:,} {verb}"
            )

        done = renaming.rename_services(vhost, apply=apply, report=report)
        if not done.total:
            self.stdout.write("No flows to rename.")
            return
        for (old, new), count in done.moves.most_common():
            self.stdout.write(f"  {old or '(none)'} → {new}: {count:,} flows")
        verb = "Renamed" if apply else "Would rename"
        self.stdout.write(self.style.SUCCESS(f"{verb} {done.renamed:,} of {done.total:,} flows."))
