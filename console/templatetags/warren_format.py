"""Formatting filters for figures: sizes, durations, rates."""

from django import template

register = template.Library()

_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"]


@register.filter(name="bytes")
def format_bytes(value):
    try:
        size = float(value)
    except (TypeError, ValueError):
        return "–"
    for unit in _UNITS:
        if abs(size) < 1024 or unit == _UNITS[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


@register.filter(name="duration")
def format_duration(seconds):
    try:
        seconds = int(float(seconds))
    except (TypeError, ValueError):
        return "–"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


@register.filter(name="ms")
def format_ms(value):
    """Milliseconds with sensible precision: 0.42 ms, 12.3 ms, 1,204 ms."""
    if value is None or value == "":
        return "–"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    if number < 10:
        return f"{number:.2f} ms"
    if number < 100:
        return f"{number:.1f} ms"
    return f"{number:,.0f} ms"
