"""What importing a definitions file would do: compared with the broker's own definitions.

Each object of the file (user, vhost, permission, policy, queue, exchange,
binding, parameter, …) is either new (the import creates it), different from
the broker's object of the same identity (the import changes it; for a queue
or an exchange the broker refuses that instead, so it is flagged), or the same
(left alone). Objects the broker has and the file lacks stay as they are: an
import never deletes, and the preview says so.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# The parts of a definitions file, with what identifies one object and what
# is compared. A vhost's own export (GET /api/definitions/<vhost>) leaves the
# vhost out of every object: it is filled in from the vhost imported into.
Identity = Callable[[dict[str, Any]], tuple[str, ...]]


@dataclass(frozen=True)
class Kind:
    key: str
    label: str  # singular, for a row: "queue"
    identity: Identity
    compared: tuple[str, ...]
    refuses_change: bool = False  # the broker refuses a redeclaration that differs


def _name(item: dict[str, Any]) -> tuple[str, ...]:
    return (str(item.get("name", "")),)


def _in_vhost(item: dict[str, Any]) -> tuple[str, ...]:
    return (str(item.get("vhost", "")), str(item.get("name", "")))


KINDS: tuple[Kind, ...] = (
    Kind("users", "user", _name, ("tags", "password_hash", "hashing_algorithm", "limits")),
    Kind("vhosts", "vhost", _name, ("description", "tags", "default_queue_type", "metadata")),
    Kind(
        "permissions",
        "permission",
        lambda i: (str(i.get("user", "")), str(i.get("vhost", ""))),
        ("configure", "write", "read"),
    ),
    Kind(
        "topic_permissions",
        "topic permission",
        lambda i: (str(i.get("user", "")), str(i.get("vhost", "")), str(i.get("exchange", ""))),
        ("write", "read"),
    ),
    Kind(
        "parameters",
        "parameter",
        lambda i: (str(i.get("vhost", "")), str(i.get("component", "")), str(i.get("name", ""))),
        ("value",),
    ),
    Kind("global_parameters", "global parameter", _name, ("value",)),
    Kind("policies", "policy", _in_vhost, ("pattern", "apply-to", "definition", "priority")),
    Kind(
        "queues",
        "queue",
        _in_vhost,
        ("durable", "auto_delete", "arguments"),
        refuses_change=True,
    ),
    Kind(
        "exchanges",
        "exchange",
        _in_vhost,
        ("type", "durable", "auto_delete", "internal", "arguments"),
        refuses_change=True,
    ),
    Kind(
        "bindings",
        "binding",
        lambda i: (
            str(i.get("vhost", "")),
            str(i.get("source", "")),
            str(i.get("destination_type", "")),
            str(i.get("destination", "")),
            str(i.get("routing_key", "")),
            json.dumps(i.get("arguments") or {}, sort_keys=True),
        ),
        (),
    ),
)
KINDS_BY_KEY = {k.key: k for k in KINDS}
# Never shown on a page: a change of one is said in words only.
SECRET_FIELDS = ("password_hash",)
VHOST_SCOPED = ("parameters", "policies", "queues", "exchanges", "bindings")
KNOWN_TOP_LEVEL = {k.key for k in KINDS} | {
    "rabbit_version",
    "rabbitmq_version",
    "product_name",
    "product_version",
}


@dataclass
class Item:
    kind: str
    label: str
    identity: tuple[str, ...]
    changes: list[str] = field(default_factory=list)  # "field: old → new" in words
    refused: bool = False  # the broker will refuse this change

    @property
    def title(self) -> str:
        return describe(self.kind, self.identity)


@dataclass
class Preview:
    create: list[Item] = field(default_factory=list)
    change: list[Item] = field(default_factory=list)
    unchanged: list[Item] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # parts of the file Warren does not compare

    @property
    def refused(self) -> list[Item]:
        return [i for i in self.change if i.refused]


def describe(kind: str, identity: tuple[str, ...]) -> str:
    if kind == "bindings":
        vhost, source, dtype, destination, key, _arguments = identity
        return (
            f"{source or '(default exchange)'} → {dtype} {destination}"
            f" (key “{key}”) in vhost {vhost}"
        )
    if kind == "permissions":
        return f"{identity[0]} in vhost {identity[1]}"
    if kind == "topic_permissions":
        return f"{identity[0]} in vhost {identity[1]} on exchange {identity[2]}"
    if kind == "parameters":
        return f"{identity[1]} {identity[2]} in vhost {identity[0]}"
    if len(identity) == 2:
        return f"{identity[1]} in vhost {identity[0]}"
    return identity[0]


class DefinitionsError(ValueError):
    """The file is not a definitions file; the message says why."""


def parse(text: str | bytes) -> dict[str, Any]:
    """A definitions file's JSON, checked for shape (an object of lists of objects)."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise DefinitionsError(f"The file is not valid JSON: {error}.") from None
    if not isinstance(data, dict):
        raise DefinitionsError("A definitions file is a JSON object (as an export gives).")
    if not any(key in data for key in KINDS_BY_KEY):
        raise DefinitionsError(
            "The file has none of the parts of a definitions file "
            "(users, vhosts, permissions, policies, queues, exchanges, bindings, …)."
        )
    for key in KINDS_BY_KEY:
        part = data.get(key)
        if part is None:
            continue
        if not isinstance(part, list) or not all(isinstance(i, dict) for i in part):
            raise DefinitionsError(f"“{key}” must be a list of objects.")
    return data


def _normalised(value: Any) -> Any:
    # Tags come as "a,b" or ["a", "b"]; compare them as sets.
    if isinstance(value, str) and "," in value:
        return sorted(t for t in value.split(",") if t)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return sorted(value)
    return value


def _fill_vhost(items: list[dict[str, Any]], vhost: str | None) -> list[dict[str, Any]]:
    if vhost is None:
        return items
    # The broker imports a vhost's file into that vhost, whatever its objects say.
    return [{**item, "vhost": vhost} for item in items]


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "(none)"
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _changes(kind: Kind, new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    changes = []
    for name in kind.compared:
        before, after = old.get(name), new.get(name)
        if name == "tags" or name == "description" or name == "limits" or name == "metadata":
            # Absent and empty mean the same for these.
            before, after = before or None, after or None
        if name not in new:
            continue  # the import leaves a field it does not carry as the broker has it
        if _normalised(before) == _normalised(after):
            continue
        if name in SECRET_FIELDS:
            changes.append("password: changes")
        elif name == "hashing_algorithm" and "password_hash" in new:
            continue
        else:
            changes.append(f"{name}: {_shown(before)} → {_shown(after)}")
    return changes


def compare(imported: dict[str, Any], current: dict[str, Any], vhost: str | None = None) -> Preview:
    """What importing `imported` over `current` would do (into `vhost` when given)."""
    preview = Preview()
    preview.ignored = sorted(k for k in imported if k not in KNOWN_TOP_LEVEL)
    for kind in KINDS:
        new_items = list(imported.get(kind.key) or [])
        if vhost is not None and kind.key not in VHOST_SCOPED:
            if new_items:
                preview.ignored.append(
                    f"{kind.key} (an import into one vhost takes only its queues, exchanges, "
                    "bindings, policies and parameters)"
                )
            continue
        old_items = list(current.get(kind.key) or [])
        if kind.key in VHOST_SCOPED:
            new_items = _fill_vhost(new_items, vhost)
            old_items = _fill_vhost(old_items, vhost)
        existing = {kind.identity(i): i for i in old_items}
        for item in new_items:
            identity = kind.identity(item)
            row = Item(kind.key, kind.label, identity)
            if identity not in existing:
                preview.create.append(row)
                continue
            row.changes = _changes(kind, item, existing[identity])
            if row.changes:
                row.refused = kind.refuses_change
                preview.change.append(row)
            else:
                preview.unchanged.append(row)
    return preview
