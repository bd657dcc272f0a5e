"""What an operator asks a replay to do, parsed strictly from the API or the form.

The JSON of `POST /api/replays` (docs/architecture.md, JSON API):

    {"message_ids": [1, 2]} | {"flow_ids": [7]} | {"filter": {"vhost": "/", ...}}
      | {"dead_letters": {"vhost": "/", "queue": "orders.dead", "from": "captured"|"peek",
                          "how": "queue"|"route", "count": 100}}
    optional: broker, vhost, exchange, routing_key (null = as the original),
      body_base64, headers (merged; a null value removes a header), headers_replace,
      keep_message_id, keep_timestamp (default true), allow_truncated,
      rate_per_s, keep_timing, speed, await_reply, reply_timeout_s,
      ignore_fields (default VOLATILE_FIELDS; [] compares every field),
      dry_run, confirm (needed above WARREN_REPLAY_CONFIRM_ABOVE messages)
"""

import base64
import binascii
from dataclasses import dataclass, field

from django.conf import settings

from replay.edits import EditError, restore_masks

MAX_RATE = 100_000.0
MAX_SPEED = 1000.0
MAX_REPLY_TIMEOUT_S = 300.0
MAX_TEXT = 255


# Reply fields left out of an RPC replay's comparison unless the operator says
# otherwise: what differs on every call whatever the service computes (the
# reply queue, times, message and correlation ids). `*` matches any characters:
# `*_at` is answered_at, created_at; `*_ms` a measured duration.
VOLATILE_FIELDS = [
    "reply_to",
    "timestamp",
    "*_at",
    "*_ms",
    "message_id",
    "correlation_id",
    "request_id",
    "trace_id",
    "span_id",
    "traceparent",
]


class SpecError(ValueError):
    pass


@dataclass
class ReplaySpec:
    message_ids: list | None = None
    flow_ids: list | None = None
    filter: dict | None = None
    dead_letters: dict | None = None
    broker: str = ""
    vhost: str | None = None
    exchange: str | None = None
    routing_key: str | None = None
    body: bytes | None = None
    headers: dict | None = None
    headers_replace: bool = False
    keep_message_id: bool = True
    keep_timestamp: bool = True
    allow_truncated: bool = False
    rate_per_s: float | None = None
    keep_timing: bool = False
    speed: float = 1.0
    await_reply: bool = False
    reply_timeout_s: float = field(default_factory=lambda: min(settings.WARREN_RPC_TIMEOUT, 30.0))
    ignore_fields: list = field(default_factory=lambda: list(VOLATILE_FIELDS))
    dry_run: bool = False
    confirm: bool = False

    @property
    def redrive_how(self):
        return (self.dead_letters or {}).get("how", "") if self.dead_letters else ""


def _bool(data, name, default=False):
    value = data.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise SpecError(f"'{name}' must be true or false.")
    return value


def _number(data, name, low, high, default=None):
    value = data.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"'{name}' must be a number.")
    if not low < value <= high:
        raise SpecError(f"'{name}' must be more than {low:g} and at most {high:g}.")
    return float(value)


def _text(data, name):
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise SpecError(f"'{name}' must be a string (or null for the original).")
    if len(value) > MAX_TEXT:
        raise SpecError(f"'{name}' is longer than {MAX_TEXT} characters.")
    return value


def _id_list(data, name):
    value = data.get(name)
    if not isinstance(value, list) or not value:
        raise SpecError(f"'{name}' must be a non-empty list of ids.")
    return value


def _dead_letters(value):
    if not isinstance(value, dict):
        raise SpecError("'dead_letters' must be an object with vhost and queue.")
    vhost, queue = value.get("vhost"), value.get("queue")
    if not isinstance(vhost, str) or not isinstance(queue, str) or not queue:
        raise SpecError("'dead_letters' needs a vhost and a queue name.")
    source = value.get("from", "captured")
    if source not in ("captured", "peek"):
        raise SpecError("'dead_letters.from' is captured or peek.")
    how = value.get("how", "queue")
    if how not in ("queue", "route"):
        raise SpecError(
            "'dead_letters.how' is queue (back to the queue it died in) or route "
            "(through the exchange and routing key it was first published with)."
        )
    count = value.get("count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise SpecError("'dead_letters.count' must be a positive whole number.")
    return {"vhost": vhost, "queue": queue, "from": source, "how": how, "count": count}


def from_api(data):
    """A ReplaySpec from the JSON body of POST /api/replays, or SpecError."""
    if not isinstance(data, dict):
        raise SpecError("The body must be a JSON object.")
    kinds = ("message_ids", "flow_ids", "filter", "dead_letters")
    sources = [name for name in kinds if name in data]
    if len(sources) != 1:
        raise SpecError("Give exactly one of message_ids, flow_ids, filter or dead_letters.")
    spec = ReplaySpec()
    if "message_ids" in data:
        spec.message_ids = _id_list(data, "message_ids")
    elif "flow_ids" in data:
        spec.flow_ids = _id_list(data, "flow_ids")
    elif "filter" in data:
        if not isinstance(data["filter"], dict) or not all(
            isinstance(value, str | int) for value in data["filter"].values()
        ):
            raise SpecError("'filter' must be an object of Messages search parameters.")
        spec.filter = {name: str(value) for name, value in data["filter"].items()}
    else:
        spec.dead_letters = _dead_letters(data["dead_letters"])
    broker = data.get("broker") or ""
    if not isinstance(broker, str):
        raise SpecError("'broker' must be a broker's slug.")
    spec.broker = broker
    spec.vhost = _text(data, "vhost")
    spec.exchange = _text(data, "exchange")
    spec.routing_key = _text(data, "routing_key")
    if data.get("body_base64") is not None:
        if not isinstance(data["body_base64"], str):
            raise SpecError("'body_base64' must be a base64 string.")
        try:
            spec.body = base64.b64decode(data["body_base64"], validate=True)
        except (binascii.Error, ValueError):
            raise SpecError("'body_base64' is not valid base64.") from None
    headers = data.get("headers")
    if headers is not None:
        if not isinstance(headers, dict):
            raise SpecError("'headers' must be a JSON object.")
        try:
            # A mask in an API edit has no single original to stand for: refused.
            spec.headers = restore_masks(headers, None)
        except EditError as error:
            raise SpecError(str(error)) from None
    spec.headers_replace = _bool(data, "headers_replace")
    spec.keep_message_id = _bool(data, "keep_message_id", True)
    spec.keep_timestamp = _bool(data, "keep_timestamp", True)
    spec.allow_truncated = _bool(data, "allow_truncated")
    spec.rate_per_s = _number(data, "rate_per_s", 0, MAX_RATE)
    spec.keep_timing = _bool(data, "keep_timing")
    spec.speed = _number(data, "speed", 0, MAX_SPEED, 1.0)
    spec.await_reply = _bool(data, "await_reply")
    spec.reply_timeout_s = _number(
        data, "reply_timeout_s", 0, MAX_REPLY_TIMEOUT_S, spec.reply_timeout_s
    )
    ignore = data.get("ignore_fields", VOLATILE_FIELDS)  # [] compares every field
    if not isinstance(ignore, list) or not all(isinstance(name, str) for name in ignore):
        raise SpecError("'ignore_fields' must be a list of JSON field names.")
    spec.ignore_fields = ignore[:50]
    spec.dry_run = _bool(data, "dry_run")
    spec.confirm = _bool(data, "confirm")
    if spec.dead_letters and (spec.exchange is not None or spec.routing_key is not None):
        raise SpecError(
            "A dead-letter redrive goes where x-death says: no exchange or routing key."
        )
    return spec
