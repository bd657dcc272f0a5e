"""Service names: which service an RPC request calls, by an ordered list of rules.

A flow's service is the unit of latency statistics. The first rule that finds a
name in the request wins (docs/architecture.md, Service names):

- ``celery_task``           the ``task`` header Celery puts on every task message
                            (protocol 2): ``tasks.add``
- ``type``                  the message's ``type`` property, set by frameworks that
                            name the operation there; a type that names the kind
                            of message instead (aio-pika's RPC sends ``call`` with
                            every request) is passed over: GENERIC_TYPES
- ``header:<name>``         any header holding a short string
- ``exchange_routing_key``  where the request went: ``rpc_queue``, ``amq.topic / weather.ohio``

``exchange_routing_key`` always answers, so it ends every list whether written
or not. WARREN_SERVICE_RULES holds the list (comma-separated); the default is
``celery_task,type,exchange_routing_key``.
"""

import base64
import binascii
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from tracer.store import pairing

CELERY_TASK = "celery_task"
TYPE = "type"
HEADER_PREFIX = "header:"
EXCHANGE_ROUTING_KEY = "exchange_routing_key"
DEFAULT_RULES = (CELERY_TASK, TYPE, EXCHANGE_ROUTING_KEY)
# A header or property longer than this is a payload, not a name.
MAX_NAME_LENGTH = 200
# `type` values that say what kind of message it is, not which operation it calls:
# naming services by them would fold every operation of a client into one.
GENERIC_TYPES = frozenset(
    {"call", "request", "rpc", "command", "message", "result", "reply", "response", "error"}
)

RULE_LABELS = {
    CELERY_TASK: "Celery task header",
    TYPE: "type property",
    EXCHANGE_ROUTING_KEY: "exchange and routing key",
}


@dataclass(frozen=True, slots=True)
class Named:
    """A service name and the rule that gave it."""

    service: str
    rule: str

    @property
    def rule_label(self) -> str:
        return rule_label(self.rule)


def rule_label(rule: str) -> str:
    if rule.startswith(HEADER_PREFIX):
        return f"header {rule[len(HEADER_PREFIX) :]}"
    return RULE_LABELS.get(rule, rule)


@functools.lru_cache(maxsize=16)
def parse_rules(rules: tuple[str, ...]) -> tuple[str, ...]:
    """The rules checked and closed by exchange_routing_key; a mistake raises ValueError."""
    checked: list[str] = []
    for raw in rules:
        rule = raw.strip()
        if rule.startswith(HEADER_PREFIX):
            if not rule[len(HEADER_PREFIX) :].strip():
                raise ValueError(f"{rule!r} names no header (write header:<name>)")
        elif rule not in RULE_LABELS:
            known = ", ".join([*RULE_LABELS, HEADER_PREFIX + "<name>"])
            raise ValueError(f"{rule!r} is not a service rule (one of {known})")
        if rule not in checked:
            checked.append(rule)
    if EXCHANGE_ROUTING_KEY in checked:
        checked = checked[: checked.index(EXCHANGE_ROUTING_KEY)]
    return (*checked, EXCHANGE_ROUTING_KEY)


def configured_rules() -> tuple[str, ...]:
    """WARREN_SERVICE_RULES, checked: a typo stops the start with its reason."""
    value = getattr(settings, "WARREN_SERVICE_RULES", DEFAULT_RULES)
    try:
        return parse_rules(tuple(value))
    except ValueError as error:
        raise ImproperlyConfigured(
            f"WARREN_SERVICE_RULES={','.join(value)!r} is not valid: {error}."
        ) from None


def _short_text(value: object) -> str:
    """A header or property as a name: text (or UTF-8 bytes as the tap encodes them), short."""
    if isinstance(value, Mapping) and set(value) == {"$bytes"}:
        try:
            value = base64.b64decode(str(value["$bytes"]), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""
    if not isinstance(value, str):
        return ""
    value = value.strip()
    return value if len(value) <= MAX_NAME_LENGTH else ""


def _headers(properties: Mapping[str, Any]) -> Mapping[str, Any]:
    headers = properties.get("headers")
    return headers if isinstance(headers, Mapping) else {}


def name(
    rules: Sequence[str], exchange: str, routing_key: str, properties: Mapping[str, Any] | None
) -> Named:
    """The service a request calls, and the rule that named it (rules as parse_rules gives)."""
    properties = properties or {}
    for rule in rules:
        found = ""
        if rule == CELERY_TASK:
            found = _short_text(_headers(properties).get("task"))
        elif rule == TYPE:
            found = _short_text(properties.get("type"))
            found = "" if found.lower() in GENERIC_TYPES else found
        elif rule.startswith(HEADER_PREFIX):
            found = _short_text(_headers(properties).get(rule[len(HEADER_PREFIX) :]))
        elif rule == EXCHANGE_ROUTING_KEY:
            break
        if found:
            return Named(found, rule)
    return Named(pairing.service_of(exchange, routing_key), EXCHANGE_ROUTING_KEY)


def properties_of(stored: object) -> Mapping[str, Any]:
    """A message's properties as a database column or a captured event holds them."""
    if isinstance(stored, Mapping):
        return stored
    if isinstance(stored, bytes | bytearray | memoryview):
        stored = bytes(stored).decode("utf-8", "replace")
    if isinstance(stored, str) and stored:
        try:
            loaded = json.loads(stored)
        except ValueError:
            return {}
        return loaded if isinstance(loaded, Mapping) else {}
    return {}


def service_of(
    exchange: str, routing_key: str, properties: object, rules: Sequence[str] | None = None
) -> str:
    """The service name of a request under the configured rules (or `rules`)."""
    rules = configured_rules() if rules is None else rules
    return name(rules, exchange, routing_key, properties_of(properties)).service
