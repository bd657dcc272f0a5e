"""The node pages' figures: one node's resources, memory breakdown, listeners, alarms.

From rabbit/nodes.py's answers (GET /api/nodes/{node}, its /memory, and the
overview's listeners); the list of nodes reuses console/overview.py's summary.
"""

from dataclasses import dataclass, field
from typing import Any

from console.overview import NodeSummary, node_summary

# The management UI's names for the memory categories RabbitMQ 3.10 reports,
# in its order of groups; a category missing here is shown by its own name.
MEMORY_LABELS = {
    "connection_readers": ("Connections", "readers"),
    "connection_writers": ("Connections", "writers"),
    "connection_channels": ("Connections", "channels"),
    "connection_other": ("Connections", "other connection memory"),
    "queue_procs": ("Queues", "classic queue processes"),
    "queue_slave_procs": ("Queues", "classic mirrors"),
    "quorum_queue_procs": ("Queues", "quorum queue processes"),
    "quorum_queue_dlx_procs": ("Queues", "quorum dead-lettering"),
    "stream_queue_procs": ("Queues", "stream processes"),
    "stream_queue_replica_reader_procs": ("Queues", "stream replica readers"),
    "stream_queue_coordinator_procs": ("Queues", "stream coordinator"),
    "binary": ("Binaries", "binaries (message bodies and more)"),
    "msg_index": ("Message store", "message store index"),
    "mnesia": ("Tables", "Mnesia (metadata)"),
    "quorum_ets": ("Tables", "quorum queue ETS"),
    "other_ets": ("Tables", "other ETS"),
    "metrics": ("Statistics", "metrics"),
    "mgmt_db": ("Statistics", "management database"),
    "plugins": ("Processes", "plugins"),
    "other_proc": ("Processes", "other processes"),
    "code": ("System", "code"),
    "atom": ("System", "atoms"),
    "other_system": ("System", "other system"),
    "allocated_unused": ("Allocated", "allocated but unused"),
    "reserved_unallocated": ("Allocated", "reserved by the OS, not allocated"),
}


@dataclass(frozen=True)
class MemoryPart:
    group: str
    label: str
    key: str
    bytes: int
    share: float  # percent of the total shown


@dataclass(frozen=True)
class Listener:
    protocol: str
    address: str
    port: int


@dataclass
class NodeDetail:
    summary: NodeSummary
    kind: str  # disc or ram
    processes_used: int
    processes_total: int
    run_queue: int
    processors: int
    rates_mode: str
    net_ticktime: int
    partitions: list[str]
    plugins: list[str]
    exchange_types: list[str]
    rabbitmq_version: str
    config_files: list[str]
    log_files: list[str]
    db_dir: str
    memory: list[MemoryPart] = field(default_factory=list)
    memory_total: int = 0
    memory_strategy: str = ""
    listeners: list[Listener] = field(default_factory=list)

    @property
    def processes_share(self) -> float:
        return _share(self.processes_used, self.processes_total)

    @property
    def fd_share(self) -> float:
        return _share(self.summary.fd_used, self.summary.fd_total)

    @property
    def sockets_share(self) -> float:
        return _share(self.summary.sockets_used, self.summary.sockets_total)

    @property
    def disk_headroom(self) -> int:
        """Bytes left before the disk alarm (negative: past it)."""
        return self.summary.disk_free - self.summary.disk_free_limit

    @property
    def alarms(self) -> list[str]:
        return alarms_of(self.summary, self.partitions)


def _share(used: int, total: int) -> float:
    return round(100 * used / total, 1) if total else 0.0


def alarms_of(node: NodeSummary, partitions: list[str] | None = None) -> list[str]:
    """What is wrong with a node, in words (empty when nothing is)."""
    words = []
    if not node.running:
        words.append("not running")
    if node.mem_alarm:
        words.append("memory alarm: publishers are blocked")
    if node.disk_free_alarm:
        words.append("disk alarm: publishers are blocked")
    if partitions:
        words.append("network partition with " + ", ".join(partitions))
    return words


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def memory_parts(memory: dict[str, Any]) -> tuple[list[MemoryPart], int, str]:
    """(parts largest first, total, strategy) from GET /api/nodes/{node}/memory.

    The total is the one the broker compares with its watermark: `rss` or
    `allocated` as its strategy says, else the sum of the parts.
    """
    sizes = {
        key: _int(value)
        for key, value in memory.items()
        if key not in ("total", "strategy") and isinstance(value, int | float)
    }
    strategy = str(memory.get("strategy") or "")
    found = memory.get("total")
    totals: dict[str, Any] = found if isinstance(found, dict) else {}
    total = _int(totals.get(strategy)) or _int(totals.get("rss")) or sum(sizes.values())
    basis = max(total, sum(sizes.values())) or 1
    parts = [
        MemoryPart(
            group=MEMORY_LABELS.get(key, ("Other", key))[0],
            label=MEMORY_LABELS.get(key, ("Other", key.replace("_", " ")))[1],
            key=key,
            bytes=size,
            share=round(100 * size / basis, 1),
        )
        for key, size in sizes.items()
    ]
    parts.sort(key=lambda part: part.bytes, reverse=True)
    return parts, total, strategy


def _version(applications: list[dict[str, Any]], name: str) -> str:
    for application in applications or []:
        if application.get("name") == name:
            return str(application.get("version") or "")
    return ""


def node_detail(
    node: dict[str, Any], memory: dict[str, Any] | None, listeners: list[dict[str, Any]]
) -> NodeDetail:
    parts, total, strategy = memory_parts(memory or {})
    name = node.get("name", "")
    return NodeDetail(
        summary=node_summary(node),
        kind=str(node.get("type") or ""),
        processes_used=_int(node.get("proc_used")),
        processes_total=_int(node.get("proc_total")),
        run_queue=_int(node.get("run_queue")),
        processors=_int(node.get("processors")),
        rates_mode=str(node.get("rates_mode") or ""),
        net_ticktime=_int(node.get("net_ticktime")),
        partitions=[str(p) for p in node.get("partitions") or []],
        plugins=sorted(str(p) for p in node.get("enabled_plugins") or []),
        exchange_types=sorted(str(t.get("name")) for t in node.get("exchange_types") or []),
        rabbitmq_version=_version(node.get("applications") or [], "rabbit"),
        config_files=[str(f) for f in node.get("config_files") or []],
        log_files=[str(f) for f in node.get("log_files") or []],
        db_dir=str(node.get("db_dir") or ""),
        memory=parts,
        memory_total=total,
        memory_strategy=strategy,
        listeners=sorted(
            (
                Listener(
                    str(item.get("protocol", "")),
                    str(item.get("ip_address", "")),
                    _int(item.get("port")),
                )
                for item in listeners
                if item.get("node") == name
            ),
            key=lambda listener: (listener.protocol, listener.port),
        ),
    )
