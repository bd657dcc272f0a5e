"""Connections and channels as the console shows them."""

from dataclasses import dataclass

from console.listing import ListQuery

CONNECTION_SORTS = {
    "name": "name",
    "user": "user",
    "vhost": "vhost",
    "state": "state",
    "channels": "channels",
    "recv": "recv_oct_details.rate",
    "send": "send_oct_details.rate",
    "connected": "connected_at",
    "node": "node",
}

CONNECTION_COLUMNS = [
    "name",
    "user",
    "vhost",
    "state",
    "node",
    "protocol",
    "ssl",
    "channels",
    "peer_host",
    "peer_port",
    "client_properties",
    "recv_oct_details.rate",
    "send_oct_details.rate",
    "connected_at",
    "timeout",
    "user_provided_name",
]

CHANNEL_SORTS = {
    "name": "name",
    "user": "user",
    "vhost": "vhost",
    "state": "state",
    "prefetch": "prefetch_count",
    "unacked": "messages_unacknowledged",
    "unconfirmed": "messages_unconfirmed",
    "consumers": "consumer_count",
    "publish": "message_stats.publish_details.rate",
    "deliver": "message_stats.deliver_get_details.rate",
    "ack": "message_stats.ack_details.rate",
}

CHANNEL_COLUMNS = [
    "name",
    "number",
    "user",
    "vhost",
    "state",
    "node",
    "connection_details",
    "prefetch_count",
    "global_prefetch_count",
    "messages_unacknowledged",
    "messages_unconfirmed",
    "messages_uncommitted",
    "consumer_count",
    "confirm",
    "transactional",
    "message_stats.publish_details.rate",
    "message_stats.deliver_get_details.rate",
    "message_stats.ack_details.rate",
    "message_stats.redeliver_details.rate",
    "idle_since",
]


def connection_query(params):
    return ListQuery.from_params(params, CONNECTION_SORTS, default_sort="name")


def channel_query(params):
    return ListQuery.from_params(params, CHANNEL_SORTS, default_sort="name")


def _rate(stats, key):
    try:
        return float(((stats or {}).get(f"{key}_details") or {}).get("rate") or 0.0)
    except (TypeError, ValueError):
        return 0.0


def _text(value):
    """Client properties arrive as strings, numbers or tables; show them as text."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_text(v)}" for k, v in value.items())
    return str(value)


@dataclass
class ConnectionRow:
    name: str
    client_name: str
    user: str
    vhost: str
    state: str
    node: str
    protocol: str
    ssl: bool
    channels: int
    peer: str
    product: str
    version: str
    platform: str
    capabilities: dict
    client_properties: dict
    recv_rate: float
    send_rate: float
    connected_at: int | None
    heartbeat: int | None

    @property
    def state_kind(self):
        return {"running": "ok", "blocked": "bad", "blocking": "warn", "flow": "warn"}.get(
            self.state, "info"
        )


def connection_row(raw):
    props = raw.get("client_properties") or {}
    host, port = raw.get("peer_host") or "", raw.get("peer_port")
    return ConnectionRow(
        name=raw.get("name", ""),
        client_name=_text(props.get("connection_name") or raw.get("user_provided_name") or ""),
        user=raw.get("user", ""),
        vhost=raw.get("vhost", ""),
        state=raw.get("state") or "",
        node=raw.get("node") or "",
        protocol=raw.get("protocol") or "",
        ssl=bool(raw.get("ssl")),
        channels=int(raw.get("channels") or 0),
        peer=f"{host}:{port}" if port else host,
        product=_text(props.get("product")),
        version=_text(props.get("version")),
        platform=_text(props.get("platform")),
        capabilities=props.get("capabilities")
        if isinstance(props.get("capabilities"), dict)
        else {},
        client_properties={k: _text(v) for k, v in props.items() if k != "capabilities"},
        recv_rate=_rate(raw, "recv_oct"),
        send_rate=_rate(raw, "send_oct"),
        connected_at=raw.get("connected_at"),
        heartbeat=raw.get("timeout"),
    )


@dataclass
class ChannelRow:
    name: str
    number: int | None
    connection: str
    peer: str
    user: str
    vhost: str
    state: str
    prefetch: int
    global_prefetch: int
    unacked: int
    unconfirmed: int
    uncommitted: int
    consumers: int
    mode: str
    publish_rate: float
    deliver_rate: float
    ack_rate: float
    redeliver_rate: float
    idle_since: str

    @property
    def state_kind(self):
        return {"running": "ok", "idle": "ok", "flow": "warn", "blocked": "bad"}.get(
            self.state, "info"
        )

    @property
    def unbounded(self):
        """Consumers without a prefetch limit can flood a slow client."""
        return self.consumers > 0 and self.prefetch == 0 and self.global_prefetch == 0


def channel_row(raw):
    details = raw.get("connection_details") or {}
    stats = raw.get("message_stats") or {}
    host, port = details.get("peer_host") or "", details.get("peer_port")
    if raw.get("confirm"):
        mode = "confirm"
    elif raw.get("transactional"):
        mode = "transactional"
    else:
        mode = ""
    return ChannelRow(
        name=raw.get("name", ""),
        number=raw.get("number"),
        connection=details.get("name", ""),
        peer=f"{host}:{port}" if port else host,
        user=raw.get("user", ""),
        vhost=raw.get("vhost", ""),
        state=raw.get("state") or "",
        prefetch=int(raw.get("prefetch_count") or 0),
        global_prefetch=int(raw.get("global_prefetch_count") or 0),
        unacked=int(raw.get("messages_unacknowledged") or 0),
        unconfirmed=int(raw.get("messages_unconfirmed") or 0),
        uncommitted=int(raw.get("messages_uncommitted") or 0),
        consumers=int(raw.get("consumer_count") or 0),
        mode=mode,
        publish_rate=_rate(stats, "publish"),
        deliver_rate=_rate(stats, "deliver_get"),
        ack_rate=_rate(stats, "ack"),
        redeliver_rate=_rate(stats, "redeliver"),
        idle_since=raw.get("idle_since") or "",
    )
