"""What the tracer pages show, computed on the server: rows, hex dumps, the timeline.

The Content-Security-Policy forbids style attributes, so the flow timeline is
an SVG whose coordinates are computed here; templates only place numbers.
"""

import orjson

from tracer.times import to_us

HEX_LIMIT = 16 * 1024
TIMELINE_WIDTH = 1000.0
MIN_SEGMENT = 2.0


def hexdump(body, limit=HEX_LIMIT):
    lines = []
    for offset in range(0, min(len(body), limit), 16):
        chunk = body[offset : offset + 16]
        hex_part = " ".join(f"{byte:02x}" for byte in chunk)
        text = "".join(chr(byte) if 32 <= byte < 127 else "." for byte in chunk)
        lines.append(f"{offset:08x}  {hex_part:<47}  |{text}|")
    return "\n".join(lines)


def pretty_json(value):
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONEncodeError:  # nested deeper than orjson writes (255 levels)
        return "(nested too deep to lay out here: see Text)"


def _shown(value):
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def property_rows(properties):
    """Basic properties (headers aside) as (name, value) rows."""
    return [
        (name, _shown(value))
        for name, value in sorted((properties or {}).items())
        if name != "headers"
    ]


def header_rows(headers, prefix=""):
    """Header table rows; nested tables flattened to dotted names."""
    rows = []
    for name, value in (headers or {}).items():
        path = f"{prefix}{name}"
        if isinstance(value, dict) and value and not _is_encoded(value):
            rows.extend(header_rows(value, path + "."))
        else:
            rows.append((path, _shown(value)))
    return rows


def _is_encoded(value):
    return len(value) == 1 and next(iter(value)).startswith("$")


def exchange_label(exchange):
    return exchange if exchange else "(default)"


# --- the flow timeline ---------------------------------------------------------------

STEPS = (
    ("requested_at", "requested"),
    ("request_delivered_at", "delivered to server"),
    ("replied_at", "replied"),
    ("reply_delivered_at", "reply delivered"),
)
SEGMENTS = (
    ("requested_at", "request_delivered_at", "queue_wait_ms", "queue wait", "seg-wait"),
    ("request_delivered_at", "replied_at", "service_ms", "service time", "seg-service"),
    ("replied_at", "reply_delivered_at", None, "reply to client", "seg-back"),
)


def timeline(flow, now=None):
    """Marks and segments of a flow to scale, x in 0…TIMELINE_WIDTH.

    Returns None for an orphan (nothing to scale against).
    """
    if flow.requested_at is None:
        return None
    start = to_us(flow.requested_at)
    times = {name: to_us(getattr(flow, name)) for name, _ in STEPS}
    last = max(value for value in times.values() if value is not None)
    if flow.status in ("pending", "timeout") and now is not None:
        last = max(last, to_us(now))
    span = max(last - start, 1)

    def x(us):
        return round((us - start) / span * TIMELINE_WIDTH, 2)

    segments = []
    for begin, end, field, label, css in SEGMENTS:
        if times[begin] is None or times[end] is None:
            continue
        left, right = x(times[begin]), x(times[end])
        ms = getattr(flow, field) if field else round((times[end] - times[begin]) / 1000, 3)
        segments.append(
            {
                "x": left,
                "width": max(right - left, MIN_SEGMENT),
                "label": label,
                "ms": ms,
                "css": css,
                "text_x": round(left + max(right - left, MIN_SEGMENT) / 2, 2),
            }
        )
    marks = [
        {
            "x": x(times[name]),
            "label": label,
            "at": getattr(flow, name),
            "offset_ms": round((times[name] - start) / 1000, 3),
        }
        for name, label in STEPS
        if times[name] is not None
    ]
    rows = place_labels(marks)
    waiting = None
    if times["replied_at"] is None:
        waiting = {"x": marks[-1]["x"], "width": max(TIMELINE_WIDTH - marks[-1]["x"], 0)}
    return {
        "segments": segments,
        "marks": marks,
        "waiting": waiting,
        "span_ms": round(span / 1000, 3),
        "width": TIMELINE_WIDTH,
        # the viewBox's height (it starts at y=30): down to the last row's time text
        "height": LABEL_TOP + (rows - 1) * LABEL_ROW + 21 - 30,
    }


# Timeline labels: 14-unit text (the time below in 12), rows 34 units apart.
LABEL_TOP = 100
LABEL_ROW = 34
LABEL_CHAR = 8.2  # a generous average width of one character at 14 units
LABEL_GAP = 12


def label_extent(mark: dict) -> tuple[float, float]:
    """Left and right of a mark's label (name above, +time below) in viewBox units."""
    width = max(len(mark["label"]), len(f"+{mark['offset_ms']} ms")) * LABEL_CHAR
    if mark["anchor"] == "start":
        return mark["x"], mark["x"] + width
    if mark["anchor"] == "end":
        return mark["x"] - width, mark["x"]
    return mark["x"] - width / 2, mark["x"] + width / 2


def place_labels(marks: list[dict]) -> int:
    """Gives each mark an anchor and a label row (label_y) so that no two labels
    overlap, even when events share a time; returns the number of rows used."""
    row_ends: list[float] = []  # per row, the right edge of its last label
    for mark in sorted(marks, key=lambda m: m["x"]):
        mark["anchor"] = "start" if mark["x"] < 120 else "end" if mark["x"] > 880 else "middle"
        left, right = label_extent(mark)
        row = next((i for i, end in enumerate(row_ends) if left >= end + LABEL_GAP), None)
        if row is None:
            row = len(row_ends)
            row_ends.append(right)
        row_ends[row] = right
        mark["label_y"] = LABEL_TOP + row * LABEL_ROW
    return max(len(row_ends), 1)
