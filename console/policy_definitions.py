"""Policy definitions: the keys a policy may set, per what it applies to, and their values.

The broker refuses a bad definition with a single line naming the first
problem it meets, and takes some wrong ones silently (a classic-only key in a
policy that applies to quorum queues does nothing). The editor checks every
key against the policy's apply-to and every value against the key's type, and
reports all problems at once, each in words.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

CLASSIC = "classic"
QUORUM = "quorum"
STREAM = "stream"
EXCHANGE = "exchange"
QUEUES = frozenset({CLASSIC, QUORUM, STREAM})

# What each apply-to value reaches. classic_queues, quorum_queues and streams
# exist from RabbitMQ 3.12 on; older brokers know queues, exchanges and all.
APPLY_TO: dict[str, frozenset[str]] = {
    "queues": QUEUES,
    "classic_queues": frozenset({CLASSIC}),
    "quorum_queues": frozenset({QUORUM}),
    "streams": frozenset({STREAM}),
    "exchanges": frozenset({EXCHANGE}),
    "all": QUEUES | {EXCHANGE},
}
APPLY_TO_LABELS = {
    "queues": "queues (every type)",
    "classic_queues": "classic queues",
    "quorum_queues": "quorum queues",
    "streams": "streams",
    "exchanges": "exchanges",
    "all": "exchanges and queues",
}
TYPED_APPLY_TO = ("classic_queues", "quorum_queues", "streams")
MAX_AGE = re.compile(r"^[1-9][0-9]*(Y|M|D|h|m|s)$")
POLICY_NAME_MAX = 255


@dataclass(frozen=True)
class PolicyKey:
    key: str
    kind: str  # "int", "text", "choice", "age", "ha-params"
    targets: frozenset[str]
    help: str
    minimum: int = 0
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    operator: bool = False  # may an operator policy set it

    @property
    def target_words(self) -> str:
        order = (CLASSIC, QUORUM, STREAM, EXCHANGE)
        names = {CLASSIC: "classic", QUORUM: "quorum", STREAM: "streams", EXCHANGE: "exchanges"}
        return ", ".join(names[t] for t in order if t in self.targets)

    @property
    def targets_attr(self) -> str:
        """The targets as the editor's script reads them (space separated)."""
        return " ".join(sorted(self.targets))

    @property
    def type_words(self) -> str:
        if self.kind == "int":
            upper = f" to {self.maximum}" if self.maximum is not None else ""
            return f"whole number ≥ {self.minimum}{upper}"
        if self.kind == "choice":
            return " | ".join(self.choices)
        if self.kind == "age":
            return "number + Y/M/D/h/m/s"
        if self.kind == "ha-params":
            return "count (exactly) or node names (nodes)"
        return "text"


CQ = frozenset({CLASSIC, QUORUM})
KEYS: tuple[PolicyKey, ...] = (
    PolicyKey("message-ttl", "int", CQ, "Milliseconds a message may wait.", operator=True),
    PolicyKey(
        "expires", "int", CQ, "Milliseconds unused before the queue is deleted.", 1, operator=True
    ),
    PolicyKey("max-length", "int", CQ, "Ready messages kept at most.", operator=True),
    PolicyKey("max-length-bytes", "int", QUEUES, "Bytes of bodies kept at most.", operator=True),
    PolicyKey(
        "overflow",
        "choice",
        CQ,
        "What gives at a max length (reject-publish-dlx: classic only).",
        choices=("drop-head", "reject-publish", "reject-publish-dlx"),
    ),
    PolicyKey("dead-letter-exchange", "text", CQ, "Exchange dead letters are republished to."),
    PolicyKey("dead-letter-routing-key", "text", CQ, "Routing key dead letters get."),
    PolicyKey(
        "dead-letter-strategy",
        "choice",
        frozenset({QUORUM}),
        "at-least-once needs overflow reject-publish.",
        choices=("at-most-once", "at-least-once"),
    ),
    PolicyKey(
        "delivery-limit",
        "int",
        frozenset({QUORUM}),
        "Redeliveries before dead-lettering.",
        operator=True,
    ),
    PolicyKey(
        "max-in-memory-length",
        "int",
        frozenset({QUORUM}),
        "Messages kept in memory.",
        operator=True,
    ),
    PolicyKey(
        "max-in-memory-bytes", "int", frozenset({QUORUM}), "Bytes kept in memory.", operator=True
    ),
    PolicyKey("max-age", "age", frozenset({STREAM}), "Retention of a stream's segments."),
    PolicyKey("stream-max-segment-size-bytes", "int", frozenset({STREAM}), "Segment file size.", 1),
    PolicyKey(
        "queue-mode",
        "choice",
        frozenset({CLASSIC}),
        "lazy: keep messages on disk.",
        choices=("default", "lazy"),
    ),
    PolicyKey("queue-version", "int", frozenset({CLASSIC}), "Classic queue storage version.", 1, 2),
    PolicyKey(
        "queue-master-locator",
        "choice",
        frozenset({CLASSIC}),
        "Which node a new queue's leader lives on.",
        choices=("min-masters", "client-local", "random"),
    ),
    PolicyKey(
        "ha-mode",
        "choice",
        frozenset({CLASSIC}),
        "Classic mirroring (deprecated).",
        choices=("all", "exactly", "nodes"),
    ),
    PolicyKey("ha-params", "ha-params", frozenset({CLASSIC}), "With ha-mode exactly or nodes."),
    PolicyKey(
        "ha-sync-mode",
        "choice",
        frozenset({CLASSIC}),
        "Mirror synchronisation.",
        choices=("manual", "automatic"),
    ),
    PolicyKey("ha-sync-batch-size", "int", frozenset({CLASSIC}), "Messages per sync batch.", 1),
    PolicyKey(
        "ha-promote-on-shutdown",
        "choice",
        frozenset({CLASSIC}),
        "Promotion on shutdown.",
        choices=("when-synced", "always"),
    ),
    PolicyKey(
        "ha-promote-on-failure",
        "choice",
        frozenset({CLASSIC}),
        "Promotion on failure.",
        choices=("when-synced", "always"),
    ),
    PolicyKey("alternate-exchange", "text", frozenset({EXCHANGE}), "Where unroutable messages go."),
    PolicyKey("federation-upstream", "text", CQ | {EXCHANGE}, "Federation plugin: one upstream."),
    PolicyKey(
        "federation-upstream-set", "text", CQ | {EXCHANGE}, "Federation plugin: an upstream set."
    ),
)
KEYS_BY_NAME = {k.key: k for k in KEYS}


def version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split("."):
        digits = re.match(r"\d+", part)
        parts.append(int(digits.group()) if digits else 0)
    return tuple(parts)


def apply_to_choices(broker_version: str, operator: bool) -> list[str]:
    """The apply-to values this broker takes, for a policy or an operator policy."""
    typed = version_tuple(broker_version) >= (3, 12)
    if operator:
        return ["queues", *(TYPED_APPLY_TO if typed else ())]
    return ["queues", *(TYPED_APPLY_TO if typed else ()), "exchanges", "all"]


def reach_attr(apply_to: str) -> str:
    """What an apply-to reaches, as the editor's script reads it (space separated)."""
    return " ".join(sorted(APPLY_TO.get(apply_to, frozenset())))


def keys_for(apply_to: str, operator: bool) -> list[PolicyKey]:
    reach = APPLY_TO.get(apply_to, frozenset())
    return [k for k in KEYS if k.targets & reach and (k.operator or not operator)]


def parse_value(key: str, text: str) -> tuple[Any, str]:
    """A value typed in the editor, as the key's type; or an error in words."""
    spec = KEYS_BY_NAME.get(key)
    text = text.strip()
    if spec is None:
        return None, f"{key}: not a policy key Warren knows."
    if text == "":
        return None, f"{key}: give a value, or leave the row empty."
    if spec.kind == "int":
        try:
            return int(text), ""
        except ValueError:
            return None, f"{key}: “{text}” is not a whole number."
    if spec.kind == "ha-params":
        if text.isdigit():
            return int(text), ""
        return [n.strip() for n in text.split(",") if n.strip()], ""
    return text, ""


def validate(
    definition: dict[str, Any], apply_to: str, operator: bool, broker_version: str = "3.10"
) -> list[str]:
    """Every problem with a definition, in words; [] when it may be sent."""
    problems: list[str] = []
    if apply_to not in apply_to_choices(broker_version, operator):
        allowed = ", ".join(apply_to_choices(broker_version, operator))
        return [f"Apply to: “{apply_to}” is not one this broker takes ({allowed})."]
    if not definition:
        return ["Definition: set at least one key."]
    reach = APPLY_TO[apply_to]
    for key, value in definition.items():
        spec = KEYS_BY_NAME.get(key)
        if spec is None:
            known = ", ".join(k.key for k in keys_for(apply_to, operator))
            problems.append(f"{key}: not a policy key for {APPLY_TO_LABELS[apply_to]} ({known}).")
            continue
        if operator and not spec.operator:
            allowed = ", ".join(k.key for k in KEYS if k.operator)
            problems.append(f"{key}: an operator policy may set only {allowed}.")
            continue
        if not spec.targets & reach:
            problems.append(
                f"{key}: applies to {spec.target_words}, not to {APPLY_TO_LABELS[apply_to]}."
            )
            continue
        problems.extend(_value_problems(spec, value, reach))
    problems.extend(_combination_problems(definition, reach))
    return problems


def _value_problems(spec: PolicyKey, value: Any, reach: frozenset[str]) -> list[str]:
    key = spec.key
    if spec.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{key}: a whole number, not {value!r}."]
        if value < spec.minimum:
            return [f"{key}: at least {spec.minimum}."]
        if spec.maximum is not None and value > spec.maximum:
            return [f"{key}: at most {spec.maximum}."]
        return []
    if spec.kind == "ha-params":
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return []
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return []
        return [f"{key}: a count of at least 1, or a list of node names."]
    if not isinstance(value, str):
        return [f"{key}: text, not {value!r}."]
    if spec.kind == "choice" and value not in spec.choices:
        return [f"{key}: one of {', '.join(spec.choices)}, not “{value}”."]
    if spec.kind == "choice" and value == "reject-publish-dlx" and CLASSIC not in reach:
        return [f"{key}: reject-publish-dlx works on classic queues only."]
    if spec.kind == "age" and not MAX_AGE.match(value):
        return [f"{key}: a number and a unit (Y, M, D, h, m, s), e.g. 7D, not “{value}”."]
    if spec.kind == "text" and not value:
        return [f"{key}: must not be empty."]
    return []


def _combination_problems(definition: dict[str, Any], reach: frozenset[str]) -> list[str]:
    problems = []
    mode = definition.get("ha-mode")
    if mode in ("exactly", "nodes") and "ha-params" not in definition:
        problems.append(f"ha-params: ha-mode {mode} needs ha-params.")
    if "ha-params" in definition:
        params = definition["ha-params"]
        if mode not in ("exactly", "nodes"):
            problems.append("ha-params: only with ha-mode exactly or nodes.")
        elif mode == "exactly" and not isinstance(params, int):
            problems.append("ha-params: ha-mode exactly takes a count.")
        elif mode == "nodes" and not isinstance(params, list):
            problems.append("ha-params: ha-mode nodes takes node names.")
    if "dead-letter-routing-key" in definition and "dead-letter-exchange" not in definition:
        problems.append("dead-letter-routing-key: needs a dead-letter-exchange too.")
    if (
        definition.get("dead-letter-strategy") == "at-least-once"
        and definition.get("overflow") != "reject-publish"
    ):
        problems.append("dead-letter-strategy: at-least-once needs overflow reject-publish.")
    return problems


def parse_rows(rows: Iterable[tuple[str, str]]) -> tuple[dict[str, Any], list[str]]:
    """The editor's key/value rows as a definition; empty rows are skipped."""
    definition: dict[str, Any] = {}
    problems: list[str] = []
    for key, text in rows:
        key = key.strip()
        if not key and not text.strip():
            continue
        if not key:
            problems.append(f"A value (“{text.strip()}”) has no key.")
            continue
        if key in definition:
            problems.append(f"{key}: set twice.")
            continue
        value, problem = parse_value(key, text)
        if problem:
            problems.append(problem)
        else:
            definition[key] = value
    return definition, problems


def as_text(value: Any) -> str:
    """A definition's value as the editor shows it."""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)
