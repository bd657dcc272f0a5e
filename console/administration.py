"""Administration actions on a broker: each one is audited, whatever its end.

Views check the role and the input, then call `act` with the door call to
make (rabbit/administration.py); it records who did what to which object and
how it ended, and returns an operations.Outcome for the page to show.
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.http import HttpRequest

from console.models import AuditEntry
from console.operations import Outcome
from rabbit.administration import Administration
from rabbit.brokers import BrokerConfig
from rabbit.management_http import BrokerError


def door(broker: BrokerConfig) -> Administration:
    return Administration(broker.client())


def act(
    request: HttpRequest,
    broker: BrokerConfig,
    action: str,
    target: str,
    call: Callable[[Administration], Any],
    done: str,
    vhost: str = "",
    detail: str = "",
) -> Outcome:
    """Run one change through the door; audit it; say how it went."""
    try:
        call(door(broker))
    except BrokerError as error:
        AuditEntry.record(
            request,
            action,
            result=AuditEntry.FAILED,
            broker=broker.slug,
            vhost=vhost,
            target=target,
            detail=error.message,
        )
        words = action.replace("_", " ").capitalize()
        return Outcome(False, f"{words} failed for {target}: {error.message}")
    AuditEntry.record(
        request,
        action,
        result=AuditEntry.OK,
        broker=broker.slug,
        vhost=vhost,
        target=target,
        detail=detail or done,
    )
    return Outcome(True, done)


def refuse(
    request: HttpRequest,
    broker: BrokerConfig,
    action: str,
    target: str,
    problems: str,
    vhost: str = "",
) -> Outcome:
    """Input that did not validate: nothing sent, the attempt audited."""
    AuditEntry.record(
        request,
        action,
        result=AuditEntry.FAILED,
        broker=broker.slug,
        vhost=vhost,
        target=target,
        detail=f"invalid input: {problems}",
    )
    return Outcome(False, f"Nothing was changed: {problems}")


def bring_limits_to(
    wanted: Mapping[str, int | None],
    known: Iterable[str],
    current: Mapping[str, int],
    set_limit: Callable[[str, int], object],
    clear_limit: Callable[[str], object],
) -> None:
    """Change only the limits that differ (a user's or a vhost's): each of `known` that
    `wanted` leaves empty is cleared when set, each that it changes is set."""
    for limit in known:
        value = wanted.get(limit)
        if value is None and limit in current:
            clear_limit(limit)
        elif value is not None and current.get(limit) != value:
            set_limit(limit, value)


def limits_words(wanted: Mapping[str, int | None]) -> str:
    """Limits for a message: `max-connections 5, max-channels none`."""
    return ", ".join(
        f"{limit} {'none' if value is None else value}" for limit, value in wanted.items()
    )


def fresh_vhost_names(broker: BrokerConfig) -> tuple[list[str], BrokerError | None]:
    """The broker's vhosts asked now (a vhost created a moment ago must be offered),
    and the error that kept them from coming, for the page's banner."""
    try:
        return sorted(str(v.get("name", "")) for v in door(broker).vhosts()), None
    except BrokerError as error:
        return [], error


def split_tags(text: str) -> list[str]:
    """Tags typed as "a, b" or "a b": unique, in the order given."""
    seen: list[str] = []
    for tag in text.replace(",", " ").split():
        if tag not in seen:
            seen.append(tag)
    return seen
