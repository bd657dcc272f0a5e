"""Taking Warren off a vhost: tracing off on every node, its queues and exchange gone.

Tracing stays on when the tap stops, by design: the firehose then fills the
bounded tap queue, so the next tap misses nothing that fits. `manage.py untrace`
ends that for good: the broker stops tracing the vhost on every node, and the
tap queue (with whatever it still holds), the drop counter queue and its
exchange are deleted. A running tap would switch tracing back on and declare
its queue again, so untracing refuses while one reads the vhost.
"""

from dataclasses import dataclass, field

from rabbit import cluster
from rabbit.cluster import OFF
from rabbit.management import ManagementClient
from rabbit.management_http import BrokerNotFound
from tracer.models import TapSession
from tracer.store.status import alive_sessions


@dataclass
class Untraced:
    """What untracing one vhost did, in words, and whether it is complete."""

    vhost: str
    nodes: list[str] = field(default_factory=list)  # "rabbit@a: off"
    removed: list[str] = field(default_factory=list)  # "queue 'warren.tap' (12 messages)"
    absent: list[str] = field(default_factory=list)  # what was not there
    trouble: list[str] = field(default_factory=list)  # nodes still tracing, or unreachable

    @property
    def complete(self) -> bool:
        return not self.trouble


def taps_reading(vhosts: list[str]) -> list[TapSession]:
    """Running taps that read one of `vhosts` (or every vhost, with `*`)."""
    wanted = set(vhosts)
    return [
        session
        for session in alive_sessions()
        if "*" in (session.vhosts or ()) or wanted & set(session.vhosts or ())
    ]


def untrace(client: ManagementClient, vhost: str, queue_name: str) -> Untraced:
    """Tracing off for `vhost` on every node; Warren's queues and exchange there deleted."""
    result = Untraced(vhost)
    report = cluster.switch_tracing_off(client, vhost)
    for node in report.nodes:
        if node.state == OFF:
            result.nodes.append(f"{node.node}: off")
        else:
            words = f"{node.node}: {node.state}" + (f" ({node.reason})" if node.reason else "")
            result.nodes.append(words)
            result.trouble.append(words)
    for kind, name in (
        ("queue", queue_name),
        ("queue", f"{queue_name}.dropped"),
        ("exchange", f"{queue_name}.drops"),
    ):
        try:
            if kind == "queue":
                held = client.queue(vhost, name).get("messages") or 0
                client.delete_queue(vhost, name)
                result.removed.append(f"queue {name!r} ({held:,} messages)")
            else:
                client.delete_exchange(vhost, name)
                result.removed.append(f"exchange {name!r}")
        except BrokerNotFound:
            result.absent.append(f"{kind} {name!r}")
    return result
