"""Searching messages and flows: parameters checked, cursors, newest first.

Shared by the JSON API (docs/architecture.md) and the pages, so both accept exactly the
same filters and refuse the same mistakes with the same words (`BadQuery`).
Lists are ordered by capture (start) time, then id, newest first; the cursor
names the last row shown, so pages stay stable while new events arrive.
"""

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from console.env import parse_duration
from tracer.masking import mask_body, masked_names
from tracer.models import Flow, Message
from tracer.store import pairing, stats
from tracer.times import from_us, to_us

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_TEXT = 1000
BODY_SCAN_CHUNK = 500
BODY_SCAN_LIMIT = 20_000  # rows looked at per page of a body search

MESSAGE_PARAMS = (
    "vhost",
    "exchange",
    "routing_key",
    "queue",
    "event",
    "correlation_id",
    "flow",
    "q",
    "since",
    "until",
    "limit",
    "cursor",
)
FLOW_PARAMS = (
    "vhost",
    "service",
    "status",
    "correlation_id",
    "min_latency_ms",
    "since",
    "until",
    "limit",
    "cursor",
)
STATS_PARAMS = ("vhost", "service", "since", "until")


class BadQuery(ValueError):
    """A parameter that cannot be used, with the reason in words."""


@dataclass
class Page:
    items: list
    next: str | None


def _single(params, name):
    values = params.getlist(name) if hasattr(params, "getlist") else [params.get(name)]
    values = [value for value in values if value is not None]
    if len(values) > 1:
        raise BadQuery(f"Give '{name}' once, not {len(values)} times.")
    return values[0] if values else None


def _check_known(params, allowed, strict):
    if not strict:
        return
    unknown = sorted(set(params.keys()) - set(allowed))
    if unknown:
        raise BadQuery(f"Unknown parameter '{unknown[0]}'; this list takes: {', '.join(allowed)}.")


def _text(params, name):
    value = _single(params, name)
    if value is None or value == "":
        return None
    if len(value) > MAX_TEXT:
        raise BadQuery(f"'{name}' is longer than {MAX_TEXT} characters.")
    if "\x00" in value:
        raise BadQuery(f"'{name}' contains a NUL character.")
    return value


def _time(params, name):
    value = _text(params, name)
    if value is None:
        return None
    parsed = None
    try:
        parsed = parse_datetime(value.strip().replace(" ", "T", 1))
    except ValueError:
        parsed = None
    if parsed is None:
        try:
            return timezone.now() - parse_duration(value)
        except (TypeError, ValueError, OverflowError):
            raise BadQuery(
                f"'{name}' must be an ISO 8601 time (2024-05-01T12:00:00Z) "
                f"or a duration ago (15m, 2h, 7d), not {value!r}."
            ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        # In UTC, as the databases compare it: 9999-12-31T23:00:00-14:00 is past
        # the last year a datetime can hold, 0001-01-01T00:00:00+01:00 before the first.
        return parsed.astimezone(UTC)
    except OverflowError:
        raise BadQuery(
            f"'{name}' is out of range: {value!r} is not between 0001-01-01 and 9999-12-31 in UTC."
        ) from None


def _number(params, name, kind=int, minimum=None, maximum=None, default=None):
    value = _text(params, name)
    if value is None:
        return default
    try:
        number = kind(value)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise BadQuery(f"'{name}' must be {what}, not {value!r}.") from None
    if kind is float and number != number:
        raise BadQuery(f"'{name}' must be a number, not {value!r}.")
    if minimum is not None and number < minimum:
        raise BadQuery(f"'{name}' must be at least {minimum}, not {value}.")
    if maximum is not None and number > maximum:
        raise BadQuery(f"'{name}' must be at most {maximum}, not {value}.")
    return number


def _choice(params, name, choices):
    value = _text(params, name)
    if value is not None and value not in choices:
        raise BadQuery(f"'{name}' must be one of {', '.join(choices)}, not {value!r}.")
    return value


def encode_cursor(when, row_id):
    raw = f"{to_us(when)}:{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor(params):
    value = _text(params, "cursor")
    if value is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        when, row_id = raw.split(":")
        if not 0 < int(row_id) < 2**63:
            raise ValueError(row_id)
        return from_us(int(when)), int(row_id)
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise BadQuery("'cursor' is not one this API gave out; start again without it.") from None


def _window(params):
    since, until = _time(params, "since"), _time(params, "until")
    if since and until and since > until:
        raise BadQuery("'since' is later than 'until'.")
    return since, until


# --- messages ------------------------------------------------------------------


def message_filters(params, strict=True):
    _check_known(params, MESSAGE_PARAMS, strict)
    since, until = _window(params)
    exchange = _text(params, "exchange")
    return {
        "vhost": _text(params, "vhost"),
        "exchange": "" if exchange == "amq.default" else exchange,
        "routing_key": _text(params, "routing_key"),
        "queue": _text(params, "queue"),
        "event": _choice(params, "event", ("publish", "deliver")),
        "correlation_id": _text(params, "correlation_id"),
        "flow": _number(params, "flow", minimum=1, maximum=2**63 - 1),
        "q": _text(params, "q"),
        "since": since,
        "until": until,
        "limit": _number(params, "limit", minimum=1, maximum=MAX_LIMIT, default=DEFAULT_LIMIT),
        "cursor": _cursor(params),
    }


def _body_contains(queryset, text):
    needle = text.encode("utf-8")
    if connection.vendor == "sqlite":
        return queryset.extra(where=["instr(body, %s) > 0"], params=[needle])  # noqa: S610
    return queryset.extra(where=["position(%s::bytea in body) > 0"], params=[needle])  # noqa: S610


def _after_cursor(queryset, field, cursor):
    if cursor is None:
        return queryset
    when, row_id = cursor
    return queryset.filter(Q(**{f"{field}__lt": when}) | Q(**{field: when, "id__lt": row_id}))


def message_queryset(filters):
    queryset = Message.objects.all()
    for name in ("vhost", "routing_key", "queue", "event", "correlation_id"):
        if filters[name] is not None:
            queryset = queryset.filter(**{name: filters[name]})
    if filters["exchange"] is not None:
        queryset = queryset.filter(exchange=filters["exchange"])
    if filters["flow"] is not None:
        queryset = queryset.filter(flow_id=filters["flow"])
    if filters["since"]:
        queryset = queryset.filter(captured_at__gte=filters["since"])
    if filters["until"]:
        queryset = queryset.filter(captured_at__lte=filters["until"])
    if filters["q"]:
        queryset = _body_contains(queryset, filters["q"])
    return queryset.order_by("-captured_at", "-id")


def messages_page(filters):
    queryset = _after_cursor(message_queryset(filters), "captured_at", filters["cursor"])
    limit = filters["limit"]
    if not filters["q"]:
        rows = list(queryset.defer("body")[: limit + 1])
        more = len(rows) > limit
        rows = rows[:limit]
        last = rows[-1] if rows else None
        return Page(rows, encode_cursor(last.captured_at, last.id) if more and last else None)
    return _body_search_page(queryset, filters["q"], limit)


def _body_search_page(queryset, text, limit):
    """Matches in the stored body that are still matches once masked.

    Masked values are stored raw, so a search must not reveal them: a row whose
    body only matches inside a masked field is left out.
    """
    names = masked_names()
    needle = text.encode("utf-8")
    found, scanned, last, exhausted = [], 0, None, False
    cursor_queryset = queryset
    while len(found) < limit and scanned < BODY_SCAN_LIMIT:
        chunk = list(cursor_queryset[:BODY_SCAN_CHUNK])
        if not chunk:
            exhausted = True
            break
        for row in chunk:
            scanned += 1
            last = row
            if needle in mask_body(bytes(row.body), names):
                found.append(row)
                if len(found) == limit:
                    break
        if len(found) < limit and len(chunk) < BODY_SCAN_CHUNK:
            exhausted = True
            break
        cursor_queryset = _after_cursor(queryset, "captured_at", (last.captured_at, last.id))
    more = not exhausted and last is not None
    return Page(found, encode_cursor(last.captured_at, last.id) if more else None)


# --- flows ---------------------------------------------------------------------


def flow_filters(params, strict=True):
    _check_known(params, FLOW_PARAMS, strict)
    since, until = _window(params)
    return {
        "vhost": _text(params, "vhost"),
        "service": _text(params, "service"),
        "status": _choice(params, "status", pairing.STATUSES),
        "correlation_id": _text(params, "correlation_id"),
        "min_latency_ms": _number(params, "min_latency_ms", kind=float, minimum=0),
        "since": since,
        "until": until,
        "limit": _number(params, "limit", minimum=1, maximum=MAX_LIMIT, default=DEFAULT_LIMIT),
        "cursor": _cursor(params),
    }


def flow_queryset(filters):
    queryset = Flow.objects.all()
    for name in ("vhost", "service", "status", "correlation_id"):
        if filters[name] is not None:
            queryset = queryset.filter(**{name: filters[name]})
    if filters["min_latency_ms"] is not None:
        queryset = queryset.filter(latency_ms__gte=filters["min_latency_ms"])
    if filters["since"]:
        queryset = queryset.filter(started_at__gte=filters["since"])
    if filters["until"]:
        queryset = queryset.filter(started_at__lte=filters["until"])
    return queryset.order_by("-started_at", "-id")


def flows_page(filters):
    queryset = _after_cursor(flow_queryset(filters), "started_at", filters["cursor"])
    limit = filters["limit"]
    rows = list(queryset[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    return Page(rows, encode_cursor(last.started_at, last.id) if more and last else None)


EARLIEST = datetime.min.replace(tzinfo=UTC)


def _stats_since(until: datetime) -> datetime:
    """Without 'since', the statistics' default window ends at 'until'; it cannot
    start before the first representable time (an 'until' in year 1 leaves it short)."""
    try:
        return until - stats.DEFAULT_WINDOW
    except OverflowError:
        return EARLIEST


def stats_filters(params, strict=True):
    _check_known(params, STATS_PARAMS, strict)
    since, until = _window(params)
    if since is None and until is not None:
        since = _stats_since(until)
    return {
        "vhost": _text(params, "vhost"),
        "service": _text(params, "service"),
        "since": since,
        "until": until,
    }
