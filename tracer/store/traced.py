"""Which vhosts the tap traces: the operator's stored choice.

The choice is made in the console (the Vhosts page, operators only) or with
`manage.py trace`, and kept in TracedVhost rows. WARREN_TRACE_VHOSTS only seeds
it: the first time anyone asks and nothing is stored, its names are stored as
traced. `*` is stored as a name of its own and means every vhost, new ones
included; while it is chosen the tap reads them all, whatever a single vhost's
row says.
"""

from collections.abc import Iterable

from django.db import IntegrityError, transaction

from tracer.models import TracedVhost

ALL_VHOSTS = "*"


def _seed(seed: Iterable[str]) -> None:
    """Store the seed's names as traced, unless a choice is stored already."""
    if TracedVhost.objects.exists():
        return
    names = sorted({name for name in seed if name})
    try:
        with transaction.atomic():
            # ignore_conflicts: another process seeding at the same moment stores the same rows
            TracedVhost.objects.bulk_create(
                [TracedVhost(vhost=name, traced=True) for name in names], ignore_conflicts=True
            )
    except IntegrityError:
        pass


def wanted_vhosts(seed: Iterable[str]) -> set[str]:
    """The vhosts to trace now (`*` among them: every vhost).

    `seed` is WARREN_TRACE_VHOSTS (settings), stored as the choice on first use;
    afterwards only the stored choice counts.
    """
    _seed(seed)
    return set(TracedVhost.objects.filter(traced=True).values_list("vhost", flat=True))


def choices(seed: Iterable[str]) -> dict[str, bool]:
    """{vhost: traced} for every vhost a choice was stored for (`*` included)."""
    _seed(seed)
    return dict(TracedVhost.objects.values_list("vhost", "traced"))


def is_traced(vhost: str, wanted: set[str]) -> bool:
    """Whether the tap reads `vhost` under the choice `wanted` (wanted_vhosts' answer)."""
    return ALL_VHOSTS in wanted or vhost in wanted


def choose(vhost: str, traced: bool, seed: Iterable[str], by: str = "") -> bool:
    """Store the choice for one vhost (or `*`); True when it changed anything."""
    _seed(seed)
    with transaction.atomic():
        row, created = TracedVhost.objects.select_for_update().get_or_create(
            vhost=vhost, defaults={"traced": traced, "changed_by": by}
        )
        if created:
            return traced  # a new row switched off changes nothing the tap does
        if row.traced == traced:
            return False
        row.traced = traced
        row.changed_by = by
        row.save(update_fields=["traced", "changed_by", "changed_at"])
        return True
