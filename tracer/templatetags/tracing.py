"""The traced-vhost choice for pages outside the tracer (the console's Vhosts page), which
cannot import the tracer: `{% load tracing %}{% tracing_choice as choice %}`."""

from typing import Any

from django import template
from django.conf import settings
from django.db import DatabaseError

from tracer.store import status, traced

register = template.Library()


@register.simple_tag
def tracing_choice() -> dict[str, Any]:
    """The stored choice, and what running taps read.

    {"wanted", "names" (sorted), "all", "reading", "tap_running", "error"}.
    """
    try:
        wanted = traced.wanted_vhosts(settings.WARREN_TRACE_VHOSTS)
        alive = status.alive_sessions()
    except DatabaseError as error:
        return {
            "wanted": set(),
            "names": [],
            "all": False,
            "reading": set(),
            "tap_running": False,
            "error": str(error),
        }
    reading: set[str] = set()
    for session in alive:
        reading.update(session.vhosts or ())
    return {
        "wanted": wanted,
        "names": sorted(wanted),
        "all": traced.ALL_VHOSTS in wanted,
        "reading": reading,
        "tap_running": bool(alive),
        "error": "",
    }


@register.filter
def traced_by(vhost: str, choice: dict[str, Any]) -> bool:
    """Whether Warren traces `vhost` under the stored choice."""
    return traced.is_traced(vhost, choice.get("wanted") or set())


@register.filter
def read_by(vhost: str, choice: dict[str, Any]) -> bool:
    """Whether a running tap reads `vhost` now."""
    reading = choice.get("reading") or set()
    return traced.ALL_VHOSTS in reading or vhost in reading
