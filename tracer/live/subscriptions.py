"""What a live page asks to see, and what its user may see at all.

A subscription is a `Filter` chosen on the page (vhost, service, exchange,
routing-key pattern with AMQP topic wildcards, status, correlation id). The
same filter serves the first load from the database, the htmx refresh and the
WebSocket stream, so the three always agree.

`may_see` is the one place that decides whether a user may see an event of a
broker and vhost. Today every viewer sees every broker Warren knows; a
narrower rule changes here and nowhere else.
"""

import re
from dataclasses import asdict, dataclass, replace
from functools import lru_cache

from console import access
from console.brokers import all_brokers

FLOWS = "flows"
MESSAGES = "messages"
STREAMS = (FLOWS, MESSAGES)

MAX_TEXT = 255
DEFAULT_SLOW_MS = 1000.0
MAX_SLOW_MS = 86_400_000.0

# Flow statuses a page may ask for: the stored ones plus two views of them.
FLOW_STATUSES = ("pending", "complete", "timeout", "orphan")
SLOW = "slow"  # answered (or still waiting) for longer than the threshold
ERRORS = "errors"  # timeouts and orphans: calls that went wrong
FLOW_CHOICES = ("", *FLOW_STATUSES, SLOW, ERRORS)
# For the message tail the "status" is the kind of event.
MESSAGE_CHOICES = ("", "publish", "deliver", "redelivered", "unroutable")

# The default exchange has no name; a filter spells it like the console does.
DEFAULT_EXCHANGE_ALIASES = ("(default)", "amq.default")


class FilterError(ValueError):
    """A filter the page sent that Warren cannot use, in words."""


@lru_cache(maxsize=256)
def topic_regex(pattern):
    """An AMQP topic binding pattern as a regular expression.

    Words are separated by dots; a word `*` matches exactly one word and `#`
    zero or more words. Anything else, including `*` inside a word, is literal.
    """
    words = []
    for word in pattern.split("."):
        if word == "#" and words and words[-1] == "#":
            continue  # "#.#" means the same as "#"
        words.append(word)
    if words == ["#"]:
        return re.compile(r"(?s).*\Z")
    parts = []
    leading_hash = False
    for index, word in enumerate(words):
        if word == "#":
            if index == 0:
                parts.append(r"(?:[^.]*\.)*")
                leading_hash = True
            else:
                parts.append(r"(?:\.[^.]*)*")
            continue
        separator = r"\." if index > 0 and not (index == 1 and leading_hash) else ""
        parts.append(separator + (r"[^.]*" if word == "*" else re.escape(word)))
    return re.compile("(?s)" + "".join(parts) + r"\Z")


def topic_matches(pattern, routing_key):
    return topic_regex(pattern).match(routing_key or "") is not None


def split_service(service):
    """(exchange, routing key) of a service name (`amq.topic / weather.ohio`)."""
    exchange, separator, routing_key = (service or "").partition(" / ")
    if not separator:
        return "", service or ""
    return exchange, routing_key


def _text(value, name):
    if value is None:
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise FilterError(f"The {name} filter must be text.")
    value = str(value).strip()
    if len(value) > MAX_TEXT:
        raise FilterError(f"The {name} filter is longer than {MAX_TEXT} characters.")
    if "\x00" in value:
        raise FilterError(f"The {name} filter contains a NUL character.")
    return value


def _threshold(value):
    if value in (None, ""):
        return DEFAULT_SLOW_MS
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise FilterError("The slow threshold must be a number of milliseconds.") from None
    if not 0 <= number <= MAX_SLOW_MS:
        raise FilterError("The slow threshold must be between 0 ms and one day.")
    return number


@dataclass(frozen=True)
class Filter:
    stream: str = FLOWS
    vhost: str = ""
    service: str = ""
    exchange: str = ""  # "" = any; the default exchange is "(default)"
    routing_key: str = ""  # AMQP topic pattern; "" = any
    queue: str = ""  # messages: the queue a delivery came from
    status: str = ""
    correlation_id: str = ""
    slow_ms: float = DEFAULT_SLOW_MS

    @classmethod
    def parse(cls, stream, params):
        """A filter from query parameters or a subscribe message; FilterError if unusable.

        `min_latency_ms` (the name the flows list and API use) means "slow
        flows above this many milliseconds".
        """
        if stream not in STREAMS:
            raise FilterError(f"Unknown stream {stream!r}.")
        if not hasattr(params, "get"):
            raise FilterError("Filters must be an object of names and values.")
        status = _text(params.get("status"), "status")
        choices = FLOW_CHOICES if stream == FLOWS else MESSAGE_CHOICES
        if status not in choices:
            raise FilterError(f"Unknown status {status!r}.")
        slow = params.get("slow_ms")
        if stream == FLOWS and params.get("min_latency_ms") not in (None, ""):
            slow = params.get("min_latency_ms")
            status = status or SLOW
        exchange = _text(params.get("exchange"), "exchange")
        if exchange in DEFAULT_EXCHANGE_ALIASES:
            exchange = "(default)"
        return cls(
            stream=stream,
            vhost=_text(params.get("vhost"), "vhost"),
            service=_text(params.get("service"), "service") if stream == FLOWS else "",
            exchange=exchange,
            routing_key=_text(params.get("routing_key"), "routing key"),
            queue=_text(params.get("queue"), "queue") if stream == MESSAGES else "",
            status=status,
            correlation_id=_text(params.get("correlation_id"), "correlation id"),
            slow_ms=_threshold(slow),
        )

    def as_dict(self):
        return asdict(self)

    def query(self):
        """The filter as query parameters for a link (empty ones left out)."""
        values = {k: v for k, v in asdict(self).items() if v not in ("", None) and k != "stream"}
        if values.get("slow_ms") == DEFAULT_SLOW_MS or self.status != SLOW:
            values.pop("slow_ms", None)
        return values

    def with_vhost(self, vhost):
        return replace(self, vhost=vhost or "")

    @property
    def is_empty(self):
        return not self.query()

    def describe(self):
        """The filter in a few words, for the page's status line."""
        parts = []
        if self.vhost:
            parts.append(f"vhost {self.vhost}")
        if self.service:
            parts.append(f"service {self.service}")
        if self.exchange:
            parts.append(f"exchange {self.exchange}")
        if self.routing_key:
            parts.append(f"routing key {self.routing_key}")
        if self.queue:
            parts.append(f"queue {self.queue}")
        if self.status == SLOW:
            parts.append(f"slower than {self.slow_ms:g} ms")
        elif self.status == ERRORS:
            parts.append("timeouts and orphans")
        elif self.status:
            parts.append(self.status)
        if self.correlation_id:
            parts.append(f"correlation id {self.correlation_id}")
        return ", ".join(parts) if parts else "everything"

    # --- matching live events (dicts made by tracer.live.publish) -------------------------

    def _exchange_ok(self, exchange):
        if not self.exchange:
            return True
        return exchange == ("" if self.exchange == "(default)" else self.exchange)

    def matches(self, event):
        if self.vhost and event["vhost"] != self.vhost:
            return False
        if self.correlation_id and (event.get("correlation_id") or "") != self.correlation_id:
            return False
        if self.stream == FLOWS:
            return self._matches_flow(event)
        return self._matches_message(event)

    def _matches_flow(self, flow):
        if self.service and flow["service"] != self.service:
            return False
        if self.exchange or self.routing_key:
            exchange, routing_key = split_service(flow["service"])
            if not flow["service"]:
                return False  # an orphan has no request, so no exchange or key
            if not self._exchange_ok(exchange):
                return False
            if self.routing_key and not topic_matches(self.routing_key, routing_key):
                return False
        return flow_status_matches(self.status, self.slow_ms, flow)

    def _matches_message(self, message):
        if not self._exchange_ok(message["exchange"]):
            return False
        if self.queue and message.get("queue") != self.queue:
            return False
        if self.routing_key and not any(
            topic_matches(self.routing_key, key) for key in message.get("routing_keys") or [""]
        ):
            return False
        status = self.status
        if status in ("publish", "deliver"):
            return message["event"] == status
        if status == "redelivered":
            return bool(message.get("redelivered"))
        if status == "unroutable":
            return message["event"] == "publish" and message.get("routed_queues") == []
        return True


def flow_status_matches(status, slow_ms, flow):
    if not status:
        return True
    if status == SLOW:
        if flow["status"] == "timeout":
            return True  # no answer within the RPC timeout is as slow as it gets
        latency = flow.get("latency_ms")
        return latency is not None and latency > slow_ms
    if status == ERRORS:
        return flow["status"] in ("timeout", "orphan") or bool(flow.get("late"))
    if status == "timeout":
        return flow["status"] == "timeout" or bool(flow.get("late"))
    return flow["status"] == status


# --- who may see what ---------------------------------------------------------------


def known_brokers():
    return frozenset(broker.slug for broker in all_brokers())


def may_see(user, broker_slug, vhost, brokers=None):
    """Whether `user` may see events of `vhost` on the broker `broker_slug`.

    A user without a role sees nothing; a broker Warren does not know (removed,
    or another installation's) is seen by nobody. `brokers` saves a lookup per
    event when the caller checks many.
    """
    if not access.can_view(user):
        return False
    brokers = known_brokers() if brokers is None else brokers
    return broker_slug in brokers


def visible_pairs(user, pairs):
    """The (broker, vhost) pairs among `pairs` that `user` may see, checked in one go."""
    if not access.can_view(user):
        return set()
    brokers = known_brokers()
    return {pair for pair in pairs if may_see(user, pair[0], pair[1], brokers)}
