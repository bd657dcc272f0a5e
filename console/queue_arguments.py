"""Queue arguments offered as fields, checked per queue type before the broker sees them.

A queue's type decides which optional arguments it takes: a stream has no
message TTL, a classic queue no delivery limit. The broker refuses some of
these with a terse PRECONDITION_FAILED and silently ignores others; here each
one is checked against the chosen type and its value's shape, and every error
names the field and says what is expected.
"""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CLASSIC = "classic"
QUORUM = "quorum"
STREAM = "stream"
QUEUE_TYPES = (CLASSIC, QUORUM, STREAM)

ALL_TYPES = frozenset(QUEUE_TYPES)
CLASSIC_AND_QUORUM = frozenset({CLASSIC, QUORUM})

# A stream's retention: a whole number and a unit, years down to seconds.
MAX_AGE = re.compile(r"^[1-9][0-9]*(Y|M|D|h|m|s)$")


@dataclass(frozen=True)
class ArgumentField:
    field: str  # the form field's name
    key: str  # the x-argument the broker reads
    label: str
    kind: str  # "int", "text", "bool", "choice" or "age"
    types: frozenset[str]
    help: str = ""
    minimum: int = 0
    maximum: int | None = None
    choices: Mapping[str, tuple[str, ...]] | None = None  # per queue type

    def applies_to(self, queue_type: str) -> bool:
        return queue_type in self.types

    @property
    def type_words(self) -> str:
        return ", ".join(t for t in QUEUE_TYPES if t in self.types)


FIELDS: tuple[ArgumentField, ...] = (
    ArgumentField(
        "message_ttl",
        "x-message-ttl",
        "Message TTL (ms)",
        "int",
        CLASSIC_AND_QUORUM,
        "How long a message may wait in the queue before it is dropped or dead-lettered.",
    ),
    ArgumentField(
        "expires",
        "x-expires",
        "Auto-expire after (ms)",
        "int",
        CLASSIC_AND_QUORUM,
        "The queue is deleted after this long without consumers or gets.",
        minimum=1,
    ),
    ArgumentField(
        "max_length",
        "x-max-length",
        "Max length (messages)",
        "int",
        CLASSIC_AND_QUORUM,
        "Ready messages kept at most; the overflow behaviour decides what gives.",
    ),
    ArgumentField(
        "max_length_bytes",
        "x-max-length-bytes",
        "Max length (bytes)",
        "int",
        ALL_TYPES,
        "Bytes of message bodies kept at most (for a stream: its whole size on disk).",
    ),
    ArgumentField(
        "overflow",
        "x-overflow",
        "Overflow behaviour",
        "choice",
        CLASSIC_AND_QUORUM,
        "What happens when a max length is reached.",
        choices={
            CLASSIC: ("drop-head", "reject-publish", "reject-publish-dlx"),
            QUORUM: ("drop-head", "reject-publish"),
        },
    ),
    ArgumentField(
        "dead_letter_exchange",
        "x-dead-letter-exchange",
        "Dead-letter exchange",
        "text",
        CLASSIC_AND_QUORUM,
        "Where rejected, expired and dropped messages are republished.",
    ),
    ArgumentField(
        "dead_letter_routing_key",
        "x-dead-letter-routing-key",
        "Dead-letter routing key",
        "text",
        CLASSIC_AND_QUORUM,
        "Replaces the message's routing key when it is dead-lettered.",
    ),
    ArgumentField(
        "single_active_consumer",
        "x-single-active-consumer",
        "Single active consumer",
        "bool",
        CLASSIC_AND_QUORUM,
        "Only one consumer receives at a time; the others wait as stand-bys.",
    ),
    ArgumentField(
        "delivery_limit",
        "x-delivery-limit",
        "Delivery limit",
        "int",
        frozenset({QUORUM}),
        "Redeliveries before a message is dropped or dead-lettered.",
    ),
    ArgumentField(
        "max_priority",
        "x-max-priority",
        "Max priority",
        "int",
        frozenset({CLASSIC}),
        "Makes the queue a priority queue with priorities 1 to this (at most 255).",
        minimum=1,
        maximum=255,
    ),
    ArgumentField(
        "max_age",
        "x-max-age",
        "Max age",
        "age",
        frozenset({STREAM}),
        "Segments older than this are removed: a number and Y, M, D, h, m or s (e.g. 7D).",
    ),
    ArgumentField(
        "stream_max_segment_size_bytes",
        "x-stream-max-segment-size-bytes",
        "Max segment size (bytes)",
        "int",
        frozenset({STREAM}),
        "Size of one segment file on disk (default 500 MB).",
        minimum=1,
    ),
)

FIELDS_BY_KEY = {f.key: f for f in FIELDS}
TRUE_WORDS = ("on", "true", "1", "yes")


@dataclass
class QueueSpec:
    """A queue to declare, once the input is valid."""

    name: str
    queue_type: str
    durable: bool
    auto_delete: bool
    arguments: dict[str, Any]


def _parse_int(field: ArgumentField, text: str) -> tuple[int | None, str]:
    try:
        value = int(text)
    except ValueError:
        return None, f"{field.label}: “{text}” is not a whole number."
    if value < field.minimum:
        return None, f"{field.label}: must be at least {field.minimum}."
    if field.maximum is not None and value > field.maximum:
        return None, f"{field.label}: must be at most {field.maximum}."
    return value, ""


def _parse_field(field: ArgumentField, queue_type: str, text: str) -> tuple[Any, str]:
    if field.kind == "int":
        return _parse_int(field, text)
    if field.kind == "bool":
        return text.lower() in TRUE_WORDS, ""
    if field.kind == "choice":
        allowed = (field.choices or {}).get(queue_type, ())
        if text not in allowed:
            return None, f"{field.label}: a {queue_type} queue takes {', '.join(allowed)}."
        return text, ""
    if field.kind == "age":
        if not MAX_AGE.match(text):
            return None, f"{field.label}: “{text}” is not a number and a unit (Y, M, D, h, m, s)."
        return text, ""
    return text, ""


def _is_set(field: ArgumentField, text: str) -> bool:
    if field.kind == "bool":
        return text.lower() in TRUE_WORDS
    return text != ""


def parse_extra(text: str) -> tuple[dict[str, Any], str]:
    """Raw extra arguments: a JSON object, or nothing."""
    text = text.strip()
    if not text:
        return {}, ""
    try:
        value = json.loads(text)
    except ValueError as error:
        return {}, f"Extra arguments are not valid JSON: {error}."
    if not isinstance(value, dict):
        return {}, 'Extra arguments must be a JSON object, e.g. {"x-queue-version": 2}.'
    return value, ""


def build_queue(values: Mapping[str, str]) -> tuple[QueueSpec | None, dict[str, str]]:
    """The queue the form describes, or None and the errors by form field ("" for the form)."""
    errors: dict[str, str] = {}
    name = (values.get("name") or "").strip()
    queue_type = values.get("queue_type") or CLASSIC
    durable = (values.get("durable") or "").lower() in TRUE_WORDS
    auto_delete = (values.get("auto_delete") or "").lower() in TRUE_WORDS
    if not name:
        errors["name"] = "Name: a queue needs a name (the broker would invent one)."
    elif name.startswith("amq."):
        errors["name"] = "Name: names starting with “amq.” are reserved for the broker."
    elif len(name.encode()) > 255:
        errors["name"] = "Name: at most 255 bytes."
    if queue_type not in QUEUE_TYPES:
        errors["queue_type"] = f"Type: one of {', '.join(QUEUE_TYPES)}."
        return None, errors
    if queue_type != CLASSIC:
        if not durable:
            errors["durable"] = f"Durable: a {queue_type} queue is always durable."
        if auto_delete:
            errors["auto_delete"] = f"Auto-delete: a {queue_type} queue cannot be auto-deleted."
    arguments: dict[str, Any] = {"x-queue-type": queue_type} if queue_type != CLASSIC else {}
    for field in FIELDS:
        text = (values.get(field.field) or "").strip()
        if not _is_set(field, text):
            continue
        if not field.applies_to(queue_type):
            errors[field.field] = (
                f"{field.label}: not for a {queue_type} queue (only {field.type_words})."
            )
            continue
        value, error = _parse_field(field, queue_type, text)
        if error:
            errors[field.field] = error
        else:
            arguments[field.key] = value
    if "x-dead-letter-routing-key" in arguments and "x-dead-letter-exchange" not in arguments:
        errors["dead_letter_routing_key"] = (
            "Dead-letter routing key: needs a dead-letter exchange too."
        )
    if arguments.get("x-overflow") == "reject-publish-dlx" and "x-dead-letter-exchange" not in (
        arguments
    ):
        errors["overflow"] = "Overflow behaviour: reject-publish-dlx needs a dead-letter exchange."
    extra, extra_error = parse_extra(values.get("extra_arguments") or "")
    if extra_error:
        errors["extra_arguments"] = extra_error
    for key, value in extra.items():
        known = FIELDS_BY_KEY.get(key)
        if key == "x-queue-type":
            errors["extra_arguments"] = "Extra arguments: choose the type above, not x-queue-type."
        elif known is not None and not known.applies_to(queue_type):
            errors["extra_arguments"] = (
                f"Extra arguments: {key} is not for a {queue_type} queue (only {known.type_words})."
            )
        elif key in arguments:
            errors["extra_arguments"] = (
                f"Extra arguments: {key} is already set by its field "
                f"({known.label if known else key})."
            )
        else:
            arguments[key] = value
    if errors:
        return None, errors
    return QueueSpec(name, queue_type, durable, auto_delete, arguments), {}
