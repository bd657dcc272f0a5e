"""Charts over time from the management API's samples, as the pages' scripts draw them.

The API gives `samples` newest first: for lengths (queued messages) each
sample is the value at that moment; for message counters (publish, deliver,
ack) it is the running total, so a rate is the difference between neighbours.
A chart is one time axis and several series on it, sent as JSON to
static/js/charts.js, which draws it with uPlot; each series names the CSS
custom property of its colour and a dash pattern, so that the lines stay
apart in print, for colour-blind eyes and in the dark theme alike.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Point = tuple[float, float]


@dataclass(frozen=True)
class Range:
    key: str
    words: str  # "last 10 minutes": the one title every chart of the page uses
    age_s: int
    incr_s: int


# The ranges the management UI offers; the broker keeps samples this long by
# default for the overview and vhosts ("global" retention), only an hour for
# queues and exchanges ("basic").
RANGES = {
    r.key: r
    for r in (
        Range("1m", "last minute", 60, 5),
        Range("10m", "last 10 minutes", 600, 5),
        Range("1h", "last hour", 3600, 60),
        Range("8h", "last 8 hours", 28800, 600),
        Range("1d", "last day", 86400, 1800),
    )
}
DEFAULT_RANGE = "10m"
BROKER_WIDE = ("1m", "10m", "1h", "8h", "1d")
PER_OBJECT = ("1m", "10m", "1h")


def pick_range(asked: str | None, offered: Sequence[str]) -> Range:
    """The range asked for when offered, else the default."""
    return RANGES[asked] if asked in offered and asked is not None else RANGES[DEFAULT_RANGE]


@dataclass(frozen=True)
class Style:
    """How one series is drawn: its label, colour variable and dash pattern."""

    label: str
    colour: str  # a CSS custom property of static/css/warren.css
    dash: tuple[int, ...] = ()


# Rates of a queue, the overview or a vhost
PUBLISH = Style("publish", "--series-blue")
DELIVER = Style("deliver", "--series-green", (7, 4))
ACK = Style("ack", "--series-violet", (2, 3))
REDELIVER = Style("redeliver", "--series-red", (9, 3, 2, 3))
CONFIRM = Style("confirm", "--series-amber", (4, 4))
UNROUTABLE = Style("unroutable", "--series-grey", (1, 4))
# Queued messages
READY = Style("ready", "--series-orange")
UNACKED = Style("unacked", "--series-blue", (7, 4))
TOTAL = Style("total", "--series-grey", (2, 3))
# An exchange's in and out
PUBLISH_IN = Style("in (published to it)", "--series-blue")
PUBLISH_OUT = Style("out (routed on)", "--series-green", (7, 4))
# Connections and channels opened and closed
OPENED = Style("connections opened", "--series-green")
CLOSED = Style("connections closed", "--series-red", (7, 4))
CHANNELS_OPENED = Style("channels opened", "--series-blue", (2, 3))


def series(samples: Iterable[Mapping[str, Any]] | None) -> list[Point]:
    """[(timestamp_s, value)] oldest first, from the API's samples."""
    points = []
    for sample in samples or []:
        try:
            points.append((float(sample["timestamp"]) / 1000.0, float(sample["sample"])))
        except (KeyError, TypeError, ValueError):
            continue
    points.sort()
    return points


def rates(samples: Iterable[Mapping[str, Any]] | None) -> list[Point]:
    """Per-second rates between neighbouring counter samples, oldest first.

    A counter that goes down (the object was declared again, statistics were
    reset) is not a negative rate: that step counts as zero.
    """
    points = series(samples)
    out = []
    for (t0, v0), (t1, v1) in zip(points, points[1:], strict=False):
        if t1 > t0:
            out.append((t1, max(0.0, (v1 - v0) / (t1 - t0))))
    return out


def chart(
    unit: str, lines: Sequence[tuple[Style, list[Point]]], zero_missing: bool = False
) -> dict[str, Any]:
    """One chart as charts.js takes it: a shared time axis, a value (or null) per line.

    Lines without a point are left out, unless `zero_missing`: the broker leaves
    out a message counter that never moved (no deliveries yet), which is a rate
    of zero, and publish, deliver and ack should always be told apart on the
    chart. A chart without any point is `empty` (the page then says why instead
    of drawing bare axes).
    """
    times = sorted({t for _, points in lines for t, _ in points})
    if zero_missing and times:
        lines = [(style, points or [(t, 0.0) for t in times]) for style, points in lines]
    drawn = [(style, dict(points)) for style, points in lines if points]
    return {
        "unit": unit,
        "empty": not times,
        "t": times,
        "series": [
            {
                "label": style.label,
                "colour": style.colour,
                "dash": list(style.dash),
                "values": [points.get(t) for t in times],
                "last": points[max(points)],
            }
            for style, points in drawn
        ],
    }


def _details(source: Mapping[str, Any] | None, key: str) -> Any:
    return ((source or {}).get(f"{key}_details") or {}).get("samples")


def rate_lines(
    stats: Mapping[str, Any] | None, keys: Sequence[tuple[Style, str]]
) -> list[tuple[Style, list[Point]]]:
    return [(style, rates(_details(stats, key))) for style, key in keys]


def length_lines(
    source: Mapping[str, Any] | None, keys: Sequence[tuple[Style, str]]
) -> list[tuple[Style, list[Point]]]:
    return [(style, series(_details(source, key))) for style, key in keys]


MESSAGE_RATES = (
    (PUBLISH, "publish"),
    (DELIVER, "deliver_get"),
    (ACK, "ack"),
    (REDELIVER, "redeliver"),
)
BROKER_RATES = MESSAGE_RATES + ((CONFIRM, "confirm"), (UNROUTABLE, "return_unroutable"))
QUEUED = ((READY, "messages_ready"), (UNACKED, "messages_unacknowledged"), (TOTAL, "messages"))
EXCHANGE_RATES = ((PUBLISH_IN, "publish_in"), (PUBLISH_OUT, "publish_out"))
CHURN = (
    (OPENED, "connection_created"),
    (CLOSED, "connection_closed"),
    (CHANNELS_OPENED, "channel_created"),
)


def queue_charts(queue: Mapping[str, Any]) -> dict[str, Any]:
    """A queue's rates and queued messages (GET /api/queues/… with samples)."""
    return {
        "rates": chart("msg/s", rate_lines(queue.get("message_stats"), MESSAGE_RATES), True),
        "queued": chart("messages", length_lines(queue, QUEUED)),
    }


def exchange_charts(exchange: Mapping[str, Any]) -> dict[str, Any]:
    """An exchange's messages in and out (GET /api/exchanges/… with samples)."""
    drawn = chart("msg/s", rate_lines(exchange.get("message_stats"), EXCHANGE_RATES), True)
    return {"rates": drawn}


def overview_charts(overview: Mapping[str, Any]) -> dict[str, Any]:
    """The broker's rates, queued messages and connection churn (GET /api/overview)."""
    return {
        "rates": chart("msg/s", rate_lines(overview.get("message_stats"), BROKER_RATES), True),
        "queued": chart("messages", length_lines(overview.get("queue_totals"), QUEUED)),
        "churn": chart("per s", rate_lines(overview.get("churn_rates"), CHURN)),
    }


def vhost_charts(vhost: Mapping[str, Any]) -> dict[str, Any]:
    """One vhost's rates and queued messages (GET /api/vhosts/… with samples)."""
    return {
        "rates": chart("msg/s", rate_lines(vhost.get("message_stats"), BROKER_RATES), True),
        "queued": chart("messages", length_lines(vhost, QUEUED)),
    }
