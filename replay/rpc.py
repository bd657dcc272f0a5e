"""RPC replay results: did the answer change, how, and how fast then vs now.

Bodies are compared in a normal form — JSON pretty-printed with sorted keys,
fields named as volatile (replay.spec.VOLATILE_FIELDS by default, `*` patterns
allowed) left out —
so that key order or spacing is no change. What a page shows is masked first
(tracer.masking); whether a reply changed is decided on the real bodies.
"""

import difflib
import fnmatch
import json
import math

from tracer.masking import mask_body


def _ignored(key, ignore):
    """Whether a field is left out: its name (any case) is listed, or matches a `*` pattern."""
    name = str(key).lower()
    return name in ignore or any(
        fnmatch.fnmatchcase(name, pattern) for pattern in ignore if "*" in pattern
    )


def _without(value, ignore):
    if isinstance(value, dict):
        # Left out entirely: a volatile field one side lacks is no change either.
        return {
            key: _without(item, ignore) for key, item in value.items() if not _ignored(key, ignore)
        }
    if isinstance(value, list):
        return [_without(item, ignore) for item in value]
    return value


def normal_form(body, ignore=()):
    """The body as text for comparing and diffing: pretty JSON when it is JSON."""
    body = bytes(body or b"")
    ignore = {name.lower() for name in ignore}
    try:
        value = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "backslashreplace")
    return json.dumps(_without(value, ignore), indent=2, sort_keys=True, ensure_ascii=False)


def changed(original, new, ignore=()):
    """Whether the new reply differs from the original (None when there is no original)."""
    if original is None or new is None:
        return None
    return normal_form(original, ignore) != normal_form(new, ignore)


def diff_lines(original, new, ignore=()):
    """A unified diff of the masked bodies as (kind, text): kind in hunk/del/add/same."""
    before = normal_form(mask_body(bytes(original or b"")), ignore).splitlines()
    after = normal_form(mask_body(bytes(new or b"")), ignore).splitlines()
    lines = []
    for line in difflib.unified_diff(before, after, "captured", "replayed", n=3, lineterm=""):
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            lines.append(("hunk", line))
        elif line.startswith("-"):
            lines.append(("del", line[1:]))
        elif line.startswith("+"):
            lines.append(("add", line[1:]))
        else:
            lines.append(("same", line[1:]))
    return lines


def shown(body):
    """A body for the page: masked, pretty when JSON."""
    return normal_form(mask_body(bytes(body or b"")))


def percentile(sorted_values, share):
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(share * len(sorted_values)))
    return sorted_values[rank - 1]


def distribution(values):
    values = sorted(value for value in values if value is not None)
    if not values:
        return {"count": 0, "p50_ms": None, "p95_ms": None, "max_ms": None, "mean_ms": None}
    return {
        "count": len(values),
        "p50_ms": round(percentile(values, 0.50), 3),
        "p95_ms": round(percentile(values, 0.95), 3),
        "max_ms": round(values[-1], 3),
        "mean_ms": round(sum(values) / len(values), 3),
    }


def regression_report(rows):
    """The regression report of an RPC replay from its items' figures.

    rows: dicts with reply_status, changed, latency_ms, original_latency_ms.
    """
    rows = [row for row in rows if row["reply_status"]]
    replied = [row for row in rows if row["reply_status"] == "replied"]
    return {
        "requests": len(rows),
        "replied": len(replied),
        "timeouts": sum(1 for row in rows if row["reply_status"] == "timeout"),
        "not_requests": sum(1 for row in rows if row["reply_status"] == "no_reply_to"),
        "changed": sum(1 for row in replied if row["changed"] is True),
        "unchanged": sum(1 for row in replied if row["changed"] is False),
        "no_original": sum(1 for row in replied if row["changed"] is None),
        "then": distribution(row["original_latency_ms"] for row in rows),
        "now": distribution(row["latency_ms"] for row in replied),
    }
