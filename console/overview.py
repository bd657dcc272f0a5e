"""Turns the management API's overview and nodes answers into page figures."""

from dataclasses import dataclass, replace


@dataclass
class NodeSummary:
    name: str
    running: bool
    mem_used: int
    mem_limit: int
    mem_alarm: bool
    disk_free: int
    disk_free_limit: int
    disk_free_alarm: bool
    uptime_s: float
    fd_used: int
    fd_total: int
    sockets_used: int
    sockets_total: int

    @property
    def mem_share(self):
        return round(100 * self.mem_used / self.mem_limit, 1) if self.mem_limit else 0.0


@dataclass
class BrokerSummary:
    cluster_name: str
    rabbitmq_version: str
    erlang_version: str
    management_version: str
    totals: dict
    messages: dict
    rates: dict
    nodes: list
    vhost: str = ""  # the totals, messages and rates are this vhost's ("" = the broker's)

    @property
    def alarms(self):
        return [n for n in self.nodes if n.mem_alarm or n.disk_free_alarm or not n.running]


def _rate(stats, key):
    return round(float((stats.get(f"{key}_details") or {}).get("rate", 0.0)), 1)


def node_summary(node):
    return NodeSummary(
        name=node.get("name", "?"),
        running=bool(node.get("running", False)),
        mem_used=int(node.get("mem_used") or 0),
        mem_limit=int(node.get("mem_limit") or 0),
        mem_alarm=bool(node.get("mem_alarm", False)),
        disk_free=int(node.get("disk_free") or 0),
        disk_free_limit=int(node.get("disk_free_limit") or 0),
        disk_free_alarm=bool(node.get("disk_free_alarm", False)),
        uptime_s=(node.get("uptime") or 0) / 1000,
        fd_used=int(node.get("fd_used") or 0),
        fd_total=int(node.get("fd_total") or 0),
        sockets_used=int(node.get("sockets_used") or 0),
        sockets_total=int(node.get("sockets_total") or 0),
    )


def broker_summary(overview, nodes):
    totals = overview.get("object_totals") or {}
    queue_totals = overview.get("queue_totals") or {}
    stats = overview.get("message_stats") or {}
    return BrokerSummary(
        cluster_name=overview.get("cluster_name", ""),
        rabbitmq_version=overview.get("rabbitmq_version", "?"),
        erlang_version=overview.get("erlang_version", "?"),
        management_version=overview.get("management_version", "?"),
        totals={
            "connections": totals.get("connections", 0),
            "channels": totals.get("channels", 0),
            "exchanges": totals.get("exchanges", 0),
            "queues": totals.get("queues", 0),
            "consumers": totals.get("consumers", 0),
        },
        messages={
            "total": queue_totals.get("messages", 0),
            "ready": queue_totals.get("messages_ready", 0),
            "unacked": queue_totals.get("messages_unacknowledged", 0),
        },
        rates={
            "publish": _rate(stats, "publish"),
            "deliver": _rate(stats, "deliver_get"),
            "ack": _rate(stats, "ack"),
        },
        nodes=[node_summary(node) for node in nodes or []],
    )


def vhost_counts(client, vhost):
    """How many queues, exchanges, connections, channels and consumers one vhost has.

    Queues and exchanges are counted by the broker (a page of one, its total);
    connections, channels and consumers come as the vhost's own lists.
    """
    return {
        "connections": len(client.connections_page(vhost).items),
        "channels": len(client.channels_page(vhost).items),
        "exchanges": client.exchanges_page(
            vhost, page_size=1, columns=["name"], disable_stats=True
        ).total_count,
        "queues": client.queues_page(
            vhost, page_size=1, columns=["name"], disable_stats=True
        ).total_count,
        "consumers": len(client.consumers(vhost) or []),
    }


def vhost_summary(broker, vhost, counts):
    """The broker's summary with one vhost's totals, messages and rates in place of the
    broker's (the cluster and its nodes stay: they serve every vhost)."""
    stats = vhost.get("message_stats") or {}
    return replace(
        broker,
        totals=counts,
        messages={
            "total": vhost.get("messages", 0) or 0,
            "ready": vhost.get("messages_ready", 0) or 0,
            "unacked": vhost.get("messages_unacknowledged", 0) or 0,
        },
        rates={
            "publish": _rate(stats, "publish"),
            "deliver": _rate(stats, "deliver_get"),
            "ack": _rate(stats, "ack"),
        },
        vhost=vhost.get("name", ""),
    )
