"""Strict readers for configuration from environment variables.

Each helper returns the default when the variable is unset or empty, and
raises ImproperlyConfigured naming the variable and the expected form when a
value is present but malformed: a typo must stop the start, not be ignored.
"""

import os
import re
from datetime import timedelta
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_DURATION_UNITS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 604800,
}


def _raw(name, environ):
    value = (environ if environ is not None else os.environ).get(name, "")
    return value.strip()


def _bad(name, value, expected):
    return ImproperlyConfigured(f"{name}={value!r} is not valid: expected {expected}.")


def env_str(name, default="", environ=None):
    return _raw(name, environ) or default


def env_bool(name, default=False, environ=None):
    value = _raw(name, environ)
    if not value:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise _bad(name, value, "one of true/false, yes/no, on/off, 1/0")


def env_int(name, default, minimum=None, maximum=None, environ=None):
    value = _raw(name, environ)
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise _bad(name, value, "a whole number") from None
    if minimum is not None and number < minimum:
        raise _bad(name, value, f"a whole number of at least {minimum}")
    if maximum is not None and number > maximum:
        raise _bad(name, value, f"a whole number of at most {maximum}")
    return number


_BYTES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)
_BYTE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def env_bytes(name, default, minimum=1, environ=None):
    """A size in bytes: '4294967296', '512M', '4G', '4GiB' (units of 1024)."""
    value = _raw(name, environ)
    if not value:
        return default
    match = _BYTES.match(value)
    if not match:
        raise _bad(name, value, "a size such as 4G, 512M or a number of bytes")
    amount, unit = match.groups()
    number = int(float(amount) * _BYTE_UNITS[unit[:1].lower()])
    if number < minimum:
        raise _bad(name, value, f"a size of at least {minimum} bytes")
    return number


def parse_duration(text):
    """'30' or '30s' -> 30 s; '500ms', '5m', '12h', '7d', '2w'. None if malformed."""
    match = _DURATION.match(text)
    if not match:
        return None
    amount, unit = match.groups()
    return timedelta(seconds=float(amount) * _DURATION_UNITS[unit or "s"])


def env_duration(name, default, environ=None):
    value = _raw(name, environ)
    if not value:
        return default
    duration = parse_duration(value)
    if duration is None or duration.total_seconds() <= 0:
        raise _bad(name, value, "a positive duration such as 30s, 5m, 12h or 7d")
    return duration


def env_file(name, environ=None):
    """A path to a readable file, or "" when unset: a missing file stops the start."""
    value = _raw(name, environ)
    if value and not os.path.isfile(value):
        raise _bad(name, value, "the path of a readable file")
    return value


def env_list(name, default, environ=None):
    value = _raw(name, environ)
    if not value:
        return list(default)
    items = [item.strip() for item in value.split(",")]
    if any(not item for item in items):
        raise _bad(name, value, "a comma-separated list without empty items")
    return items


def env_url(name, default, schemes, environ=None):
    value = _raw(name, environ) or default
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        expected = " or ".join(f"{scheme}://host..." for scheme in schemes)
        raise _bad(name, value, f"a URL of the form {expected}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise _bad(name, value, "a URL with a numeric port") from None
    return value


def parse_node_urls(text, name="WARREN_MANAGEMENT_NODE_URLS"):
    """'rabbit@a=http://10.0.0.1:15672/,rabbit@b=https://b.example:15671/' -> {node: url}.

    Strict like the rest of this module: a malformed pair stops the start with its reason.
    """
    mapping = {}
    for pair in env_list(name, [], environ={name: text}):
        node, sep, url = (part.strip() for part in pair.partition("="))
        expected = "comma-separated node=url pairs such as rabbit@host=http://host:15672/"
        if not sep or "@" not in node or node.startswith("@") or node.endswith("@"):
            raise ImproperlyConfigured(f"{name}: {pair!r} is not valid: expected {expected}.")
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ImproperlyConfigured(
                f"{name}: {pair!r} is not valid: the URL must look like http(s)://host:port/."
            )
        if node in mapping:
            raise ImproperlyConfigured(f"{name}: node {node!r} is given twice.")
        mapping[node] = url
    return mapping


def env_node_urls(name="WARREN_MANAGEMENT_NODE_URLS", environ=None):
    return parse_node_urls((environ if environ is not None else os.environ).get(name, ""), name)
