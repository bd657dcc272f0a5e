"""Masking of secrets on their way out (WARREN_MASKED_FIELDS).

Warren stores what the broker carried, unchanged, so that a replay sends the
original; every way out — pages, the JSON API, body downloads, live events —
passes through these functions first. Names match case-insensitively at any
depth: header names in the properties (and tables nested in them), and field
names in a JSON body. A body that is not valid JSON (a JSON body cut at
WARREN_BODY_LIMIT, say) still has `"name": value` pairs masked by pattern.
"""

import re
from collections.abc import Set
from functools import lru_cache
from typing import Any

import orjson
from django.conf import settings

MASK = "********"
# JSON nested deeper than this is masked by pattern (below): walking it would
# hit Python's recursion limit (orjson parses up to 1024 levels).
TREE_DEPTH = 200


class _TooDeep(Exception):
    pass


def masked_names() -> frozenset[str]:
    return frozenset(name.lower() for name in settings.WARREN_MASKED_FIELDS)


def _mask_tree(value: Any, names: Set[str], depth: int = 0) -> Any:
    if depth > TREE_DEPTH:
        raise _TooDeep
    if isinstance(value, dict):
        return {
            key: MASK if str(key).lower() in names else _mask_tree(item, names, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_mask_tree(item, names, depth + 1) for item in value]
    return value


def mask_properties(
    properties: dict[str, Any], names: frozenset[str] | None = None
) -> dict[str, Any]:
    """Properties (with their headers table) with masked header values replaced."""
    names = masked_names() if names is None else names
    if not names or not properties:
        return properties
    masked: dict[str, Any] = _mask_tree(properties, names)
    return masked


@lru_cache(maxsize=16)
def _pair_pattern(names: frozenset[str]) -> re.Pattern[bytes]:
    alternatives = "|".join(re.escape(name) for name in sorted(names))
    value = rb'"(?:[^"\\]|\\.)*"?|[^,}\]\s]+'
    return re.compile(
        rb'("(?:' + alternatives.encode() + rb')"\s*:\s*)(' + value + rb")", re.IGNORECASE
    )


def mask_body(body: bytes, names: frozenset[str] | None = None) -> bytes:
    """The body with masked JSON fields replaced; other bodies unchanged."""
    names = masked_names() if names is None else names
    if not names or not body:
        return body
    body = bytes(body)
    stripped = body.lstrip()
    if stripped[:1] in (b"{", b"["):
        try:
            parsed = orjson.loads(body)
            masked = _mask_tree(parsed, names)
        except (orjson.JSONDecodeError, _TooDeep):
            parsed = None
        else:
            return body if masked == parsed else orjson.dumps(masked)
    if b'"' not in body:
        return body
    pattern = _pair_pattern(names)
    return pattern.sub(lambda match: match.group(1) + b'"' + MASK.encode() + b'"', body)
