"""A flow's figures as precise as the tap measured them: `{% load precision %}`,
then `{{ flow|measured:"queue_wait_ms" }}` (tracer/store/resolution.py)."""

from collections.abc import Mapping
from typing import Any

from django import template

from tracer.models import Flow
from tracer.store import resolution

register = template.Library()


def _field(flow: Flow | Mapping[str, Any], name: str) -> Any:
    """A field of a stored flow, or of a live page's flow event (a dict)."""
    if isinstance(flow, Mapping):
        return flow.get(name)
    return getattr(flow, name, None)


@register.filter
def measured(flow: Flow | Mapping[str, Any], field: str) -> str:
    """`< 0.05 ms` below the tap's resolution, `≈ 3.20 ms` when measured behind."""
    return resolution.shown(
        _field(flow, field), _field(flow, "resolution_ms"), bool(_field(flow, "measured_behind"))
    )


@register.filter
def measured_for(value_ms: float | None, flow: Flow | Mapping[str, Any]) -> str:
    """A figure of `flow` that is not one of its fields (a timeline segment)."""
    return resolution.shown(
        value_ms, _field(flow, "resolution_ms"), bool(_field(flow, "measured_behind"))
    )
