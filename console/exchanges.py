"""Exchanges and bindings as the console shows them, and where a routing key leads.

`routes()` answers "if a message with this key reaches this exchange, which of
its bindings match?" with the broker's own rules for direct, fanout and topic
exchanges; the queue page uses it to name the queues a dead letter lands in.
"""

from dataclasses import dataclass
from functools import cache, lru_cache

from console import plumbing
from console.listing import ListQuery

DEFAULT_EXCHANGE_LABEL = "(AMQP default)"

EXCHANGE_SORTS = {
    "name": "name",
    "vhost": "vhost",
    "type": "type",
    "policy": "policy",
    "in": "message_stats.publish_in_details.rate",
    "out": "message_stats.publish_out_details.rate",
}

EXCHANGE_COLUMNS = [
    "name",
    "vhost",
    "type",
    "durable",
    "auto_delete",
    "internal",
    "arguments",
    "policy",
    "message_stats.publish_in_details.rate",
    "message_stats.publish_out_details.rate",
]


def list_query(params):
    return ListQuery.from_params(params, EXCHANGE_SORTS, default_sort="name")


def display_name(name):
    return name if name else DEFAULT_EXCHANGE_LABEL


def _rate(stats, key):
    try:
        return float(((stats or {}).get(f"{key}_details") or {}).get("rate") or 0.0)
    except (TypeError, ValueError):
        return 0.0


@dataclass
class ExchangeRow:
    vhost: str
    name: str
    type: str
    durable: bool
    auto_delete: bool
    internal: bool
    arguments: dict
    policy: str
    alternate_exchange: str | None
    alternate_source: str
    rate_in: float
    rate_out: float
    plumbing: bool = False  # Warren's own exchange (console/plumbing.py)

    @property
    def label(self):
        return display_name(self.name)

    @property
    def is_builtin(self):
        """The default exchange and amq.* cannot be deleted or changed."""
        return self.name == "" or self.name.startswith("amq.")

    @property
    def badges(self):
        badges = []
        if self.durable:
            badges.append(("D", "durable"))
        if self.auto_delete:
            badges.append(("AD", "auto-delete"))
        if self.internal:
            badges.append(("I", "internal: clients cannot publish to it"))
        if self.alternate_exchange is not None:
            badges.append(
                (
                    "AE",
                    f"unroutable messages go to '{self.alternate_exchange}' "
                    f"(from {self.alternate_source})",
                )
            )
        return badges


def exchange_row(exchange, policy_definitions=None):
    """A row; policy_definitions ({policy name: definition}) resolves an AE set by policy."""
    arguments = exchange.get("arguments") or {}
    policy = exchange.get("policy") or ""
    alternate, source = None, ""
    if "alternate-exchange" in arguments:
        alternate, source = str(arguments["alternate-exchange"]), "argument"
    elif policy and policy_definitions and policy in policy_definitions:
        definition = policy_definitions[policy] or {}
        if "alternate-exchange" in definition:
            alternate, source = str(definition["alternate-exchange"]), "policy"
    stats = exchange.get("message_stats") or {}
    return ExchangeRow(
        vhost=exchange.get("vhost", ""),
        name=exchange.get("name", ""),
        type=exchange.get("type", ""),
        durable=bool(exchange.get("durable")),
        auto_delete=bool(exchange.get("auto_delete")),
        internal=bool(exchange.get("internal")),
        arguments=arguments,
        policy=policy,
        alternate_exchange=alternate,
        alternate_source=source,
        rate_in=_rate(stats, "publish_in"),
        rate_out=_rate(stats, "publish_out"),
    )


def policy_definitions(policies):
    """{name: definition} from GET /api/policies/{vhost}."""
    return {p.get("name", ""): p.get("definition") or {} for p in policies or []}


@dataclass(frozen=True)
class Binding:
    vhost: str
    source: str
    destination: str
    destination_type: str  # "queue" or "exchange"
    routing_key: str
    arguments: dict
    properties_key: str

    @property
    def source_label(self):
        return display_name(self.source)

    @property
    def type_code(self):
        """'q' or 'e', as the bindings API spells it in paths."""
        return "e" if self.destination_type == "exchange" else "q"

    @property
    def removable(self):
        """The default exchange's implicit bindings cannot be removed."""
        return self.source != ""

    @property
    def plumbing_words(self):
        """What removing it breaks, when it is Warren's own binding; else ""."""
        if not plumbing.is_warren_binding(self.source, self.destination_type, self.destination):
            return ""
        return plumbing.what_breaks("unbind", "binding", self.destination, self.vhost)


def binding(raw):
    return Binding(
        vhost=raw.get("vhost", ""),
        source=raw.get("source", ""),
        destination=raw.get("destination", ""),
        destination_type=raw.get("destination_type", "queue"),
        routing_key=raw.get("routing_key", ""),
        arguments=raw.get("arguments") or {},
        properties_key=raw.get("properties_key", ""),
    )


def bindings(raw_list):
    return [binding(raw) for raw in raw_list or []]


# --- routing ------------------------------------------------------------------


@lru_cache(maxsize=4096)
def topic_matches(pattern, routing_key):
    """True when a topic binding key matches a routing key.

    Words are dot-separated; `*` is exactly one word, `#` zero or more.
    """
    words = routing_key.split(".") if routing_key != "" else [""]
    parts = pattern.split(".") if pattern != "" else [""]

    @cache
    def match(p, w):
        if p == len(parts):
            return w == len(words)
        part = parts[p]
        if part == "#":
            return any(match(p + 1, k) for k in range(w, len(words) + 1))
        if w == len(words):
            return False
        if part == "*" or part == words[w]:
            return match(p + 1, w + 1)
        return False

    return match(0, 0)


def routes(exchange_type, exchange_bindings, routing_key):
    """The bindings a message with routing_key follows; None when it depends on headers.

    exchange_bindings are Binding objects whose source is the exchange.
    """
    if exchange_type == "fanout":
        return list(exchange_bindings)
    if exchange_type == "direct":
        return [b for b in exchange_bindings if b.routing_key == routing_key]
    if exchange_type == "topic":
        return [b for b in exchange_bindings if topic_matches(b.routing_key, routing_key)]
    return None
