"""Queues as the console shows them: list rows, the detail page, dead-letter targets.

Only the columns a row shows are asked of the broker (`columns=`), which keeps
a page of 500 queues small however busy they are.
"""

from dataclasses import dataclass, field

from console.listing import ListQuery

# URL sort name -> the management API's sort key.
QUEUE_SORTS = {
    "name": "name",
    "vhost": "vhost",
    "type": "type",
    "state": "state",
    "ready": "messages_ready",
    "unacked": "messages_unacknowledged",
    "messages": "messages",
    "publish": "message_stats.publish_details.rate",
    "deliver": "message_stats.deliver_get_details.rate",
    "ack": "message_stats.ack_details.rate",
    "consumers": "consumers",
    "utilisation": "consumer_utilisation",
    "memory": "memory",
    "policy": "policy",
}

# Only what a row shows (its badges need the arguments and the policy's
# definition); the detail page asks for the whole queue.
QUEUE_COLUMNS = [
    "name",
    "vhost",
    "type",
    "state",
    "durable",
    "auto_delete",
    "exclusive",
    "arguments",
    "policy",
    "effective_policy_definition",
    "messages",
    "messages_ready",
    "messages_unacknowledged",
    "message_stats.publish_details.rate",
    "message_stats.deliver_get_details.rate",
    "message_stats.ack_details.rate",
    "consumers",
    "consumer_utilisation",
    "memory",
]

# Queue argument -> policy key for the same setting.
SETTINGS = [
    ("x-dead-letter-exchange", "dead-letter-exchange"),
    ("x-dead-letter-routing-key", "dead-letter-routing-key"),
    ("x-message-ttl", "message-ttl"),
    ("x-expires", "expires"),
    ("x-max-length", "max-length"),
    ("x-max-length-bytes", "max-length-bytes"),
    ("x-overflow", "overflow"),
    ("x-queue-mode", "queue-mode"),
    ("x-single-active-consumer", None),
    ("x-max-priority", None),
    ("x-delivery-limit", "delivery-limit"),
    ("x-queue-master-locator", "queue-master-locator"),
]


def list_query(params):
    return ListQuery.from_params(params, QUEUE_SORTS, default_sort="name")


def _rate(stats, key):
    details = (stats or {}).get(f"{key}_details") or {}
    try:
        return float(details.get("rate") or 0.0)
    except (TypeError, ValueError):
        return 0.0


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def effective_settings(queue):
    """{argument: (value, "argument"|"policy")} for the settings that shape a queue.

    A queue argument is shown over a policy's value for the same setting
    (for the length limits the broker applies the lower of the two; both
    are listed on the detail page).
    """
    arguments = queue.get("arguments") or {}
    policy = queue.get("effective_policy_definition") or {}
    if not isinstance(policy, dict):
        policy = {}
    found = {}
    for argument, policy_key in SETTINGS:
        if argument in arguments:
            found[argument] = (arguments[argument], "argument")
        elif policy_key and policy_key in policy:
            found[argument] = (policy[policy_key], "policy")
    return found


def _ms_words(value):
    try:
        ms = int(value)
    except (TypeError, ValueError):
        return str(value)
    if ms % 3_600_000 == 0 and ms:
        return f"{ms // 3_600_000}h"
    if ms % 60_000 == 0 and ms:
        return f"{ms // 60_000}m"
    if ms % 1000 == 0 and ms:
        return f"{ms // 1000}s"
    return f"{ms}ms"


def features(queue):
    """Short badges for what a queue does: [(label, explanation)]."""
    badges = []
    if queue.get("durable"):
        badges.append(("D", "durable"))
    if queue.get("auto_delete"):
        badges.append(("AD", "auto-delete"))
    if queue.get("exclusive"):
        badges.append(("Excl", "exclusive to one connection"))
    settings = effective_settings(queue)
    if "x-dead-letter-exchange" in settings:
        value, source = settings["x-dead-letter-exchange"]
        key = settings.get("x-dead-letter-routing-key", (None, ""))[0]
        target = f"exchange '{value or '(default)'}'" + (f", key '{key}'" if key else "")
        badges.append(("DLX", f"dead letters go to {target} (from {source})"))
    if "x-message-ttl" in settings:
        value, source = settings["x-message-ttl"]
        badges.append((f"TTL {_ms_words(value)}", f"message TTL (from {source})"))
    if "x-expires" in settings:
        value, source = settings["x-expires"]
        badges.append((f"Exp {_ms_words(value)}", f"queue expires when unused (from {source})"))
    if "x-max-length" in settings:
        value, source = settings["x-max-length"]
        overflow = settings.get("x-overflow", ("drop-head", ""))[0]
        badges.append((f"Lim {value}", f"at most {value} messages, then {overflow} ({source})"))
    if "x-max-length-bytes" in settings:
        value, source = settings["x-max-length-bytes"]
        badges.append(("Lim B", f"at most {value} bytes (from {source})"))
    if settings.get("x-queue-mode", ("", ""))[0] == "lazy":
        badges.append(("Lazy", "lazy mode: messages kept on disk"))
    if settings.get("x-single-active-consumer", (False, ""))[0] is True:
        badges.append(("SAC", "single active consumer"))
    if "x-max-priority" in settings:
        badges.append((f"Pri {settings['x-max-priority'][0]}", "priority queue"))
    return badges


@dataclass
class QueueRow:
    vhost: str
    name: str
    type: str
    state: str
    node: str
    messages: int | None
    ready: int | None
    unacked: int | None
    publish_rate: float
    deliver_rate: float
    ack_rate: float
    redeliver_rate: float
    consumers: int | None
    utilisation: float | None
    memory: int | None
    policy: str
    badges: list
    arguments: dict
    idle_since: str
    exclusive: bool = False
    plumbing: bool = False  # Warren's own queue (console/plumbing.py)
    href: str = ""

    @property
    def stats_pending(self):
        """New queues have no figures until the broker's next stats round (5 s)."""
        return self.messages is None

    @property
    def state_kind(self):
        return {"running": "ok", "idle": "ok", "flow": "warn"}.get(self.state, "bad")

    @property
    def backing_up(self):
        """Ready messages and nobody consuming: the first thing an operator looks for."""
        return bool(self.ready) and not self.consumers

    @property
    def utilisation_percent(self):
        if self.utilisation is None:
            return None
        return round(100 * self.utilisation)


def queue_row(queue):
    stats = queue.get("message_stats") or {}
    utilisation = queue.get("consumer_utilisation")
    if not queue.get("consumers"):
        utilisation = None  # the broker says 0 when nobody consumes: there is nothing to rate
    try:
        utilisation = float(utilisation) if utilisation is not None else None
    except (TypeError, ValueError):
        utilisation = None
    return QueueRow(
        vhost=queue.get("vhost", ""),
        name=queue.get("name", ""),
        type=queue.get("type") or "classic",
        state=queue.get("state") or ("idle" if "messages" in queue else "starting"),
        node=queue.get("node") or queue.get("leader") or "",
        messages=_int_or_none(queue.get("messages")),
        ready=_int_or_none(queue.get("messages_ready")),
        unacked=_int_or_none(queue.get("messages_unacknowledged")),
        publish_rate=_rate(stats, "publish"),
        deliver_rate=_rate(stats, "deliver_get"),
        ack_rate=_rate(stats, "ack"),
        redeliver_rate=_rate(stats, "redeliver"),
        consumers=_int_or_none(queue.get("consumers")),
        utilisation=utilisation,
        memory=_int_or_none(queue.get("memory")),
        policy=queue.get("policy") or "",
        badges=features(queue),
        arguments=queue.get("arguments") or {},
        idle_since=queue.get("idle_since") or "",
        exclusive=bool(queue.get("exclusive")),
    )


# --- detail -----------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetterTarget:
    """Where a queue's rejected, expired or overflowing messages go."""

    exchange: str
    routing_key: str | None  # None: the message keeps its own routing key
    source: str  # "argument" or "policy"


def dead_letter_target(queue):
    settings = effective_settings(queue)
    if "x-dead-letter-exchange" not in settings:
        return None
    exchange, source = settings["x-dead-letter-exchange"]
    key = settings.get("x-dead-letter-routing-key", (None, ""))[0]
    return DeadLetterTarget(exchange=str(exchange or ""), routing_key=key, source=source)


@dataclass
class Consumer:
    tag: str
    connection: str
    channel: str
    channel_number: int | None
    peer: str
    user: str
    prefetch: int
    ack_required: bool
    exclusive: bool
    active: bool
    activity: str
    arguments: dict
    queue: str = ""


def consumer(detail):
    channel = detail.get("channel_details") or {}
    peer_host = channel.get("peer_host") or ""
    peer_port = channel.get("peer_port")
    return Consumer(
        tag=detail.get("consumer_tag", ""),
        connection=channel.get("connection_name", ""),
        channel=channel.get("name", ""),
        channel_number=channel.get("number"),
        peer=f"{peer_host}:{peer_port}" if peer_port else peer_host,
        user=channel.get("user", ""),
        prefetch=int(detail.get("prefetch_count") or 0),
        ack_required=bool(detail.get("ack_required")),
        exclusive=bool(detail.get("exclusive")),
        active=bool(detail.get("active", True)),
        activity=detail.get("activity_status") or "",
        arguments=detail.get("arguments") or {},
        queue=(detail.get("queue") or {}).get("name", ""),
    )


@dataclass
class QueueDetail:
    row: QueueRow
    durable: bool
    auto_delete: bool
    bytes_total: int | None
    bytes_ready: int | None
    bytes_unacked: int | None
    bytes_persistent: int | None
    messages_persistent: int | None
    head_message_timestamp: int | None
    dead_letter: DeadLetterTarget | None
    settings: dict
    policy_definition: dict
    operator_policy: str
    consumers: list
    members: list = field(default_factory=list)
    online: list = field(default_factory=list)
    leader: str = ""
    exclusive_owner: str = ""


def queue_detail(queue):
    """Everything the queue page shows, from GET /api/queues/{vhost}/{name} (its charts
    come apart, from console/charts.py)."""
    owner = queue.get("owner_pid_details") or {}
    policy_definition = queue.get("effective_policy_definition") or {}
    return QueueDetail(
        row=queue_row(queue),
        durable=bool(queue.get("durable")),
        auto_delete=bool(queue.get("auto_delete")),
        bytes_total=_int_or_none(queue.get("message_bytes")),
        bytes_ready=_int_or_none(queue.get("message_bytes_ready")),
        bytes_unacked=_int_or_none(queue.get("message_bytes_unacknowledged")),
        bytes_persistent=_int_or_none(queue.get("message_bytes_persistent")),
        messages_persistent=_int_or_none(queue.get("messages_persistent")),
        head_message_timestamp=_int_or_none(queue.get("head_message_timestamp")),
        dead_letter=dead_letter_target(queue),
        settings=effective_settings(queue),
        policy_definition=policy_definition if isinstance(policy_definition, dict) else {},
        operator_policy=queue.get("operator_policy") or "",
        consumers=[consumer(c) for c in queue.get("consumer_details") or []],
        members=list(queue.get("members") or []),
        online=list(queue.get("online") or []),
        leader=queue.get("leader") or "",
        exclusive_owner=owner.get("name", "") if isinstance(owner, dict) else "",
    )
