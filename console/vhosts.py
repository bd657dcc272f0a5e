"""Which vhost a page looks at, and what each vhost holds.

The choice travels in the URL (`?vhost=name`, `?vhost=` for all vhosts) and is
remembered in the session per broker, so every page opens on the vhost the
operator chose last, and a link with `?vhost=` can be shared.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.core.cache import cache

from console.brokers import current_broker
from rabbit.management_http import BrokerError, BrokerNotFound

SESSION_PREFIX = "warren_vhost:"
NAMES_CACHE_SECONDS = 10
# Counting queues and exchanges costs one small call per vhost and kind; past
# this many vhosts the page shows message totals only and says so.
MAX_COUNTED_VHOSTS = 60


def _session_key(broker):
    return SESSION_PREFIX + broker.slug


def selected_vhost(request, broker=None):
    """The vhost chosen for this request, or None for all vhosts."""
    broker = broker or current_broker(request)
    key = _session_key(broker)
    if "vhost" in request.GET:
        chosen = request.GET.get("vhost", "")
        if request.session.get(key) != chosen:
            request.session[key] = chosen
        return chosen or None
    return request.session.get(key) or None


def vhost_names(broker):
    """Vhost names of a broker, cached for a few seconds; [] when it cannot answer.

    The selector sits on every page: one listing per ten seconds is enough,
    and a broker that is down must not slow every page further.
    """
    key = f"warren:vhost-names:{broker.slug}:{broker.management_url}"
    names = cache.get(key)
    if names is None:
        try:
            names = sorted(v.get("name", "") for v in broker.client().vhosts() or [])
        except BrokerError:
            names = []
        cache.set(key, names, NAMES_CACHE_SECONDS)
    return names


def forget_vhost_names(broker):
    cache.delete(f"warren:vhost-names:{broker.slug}:{broker.management_url}")


def _rate(stats, key):
    return float(((stats or {}).get(f"{key}_details") or {}).get("rate", 0.0) or 0.0)


@dataclass
class VhostSummary:
    name: str
    description: str
    tags: list
    tracing: bool
    messages: int
    ready: int
    unacked: int
    publish_rate: float
    deliver_rate: float
    nodes: dict = field(default_factory=dict)
    queues: int | None = None
    exchanges: int | None = None
    node_tracing: dict = field(default_factory=dict)  # {node: "on"|"off"|"unreachable"}

    @property
    def running(self):
        return all(state == "running" for state in self.nodes.values())


def summarise(vhost):
    stats = vhost.get("message_stats") or {}
    tags = vhost.get("tags") or []
    return VhostSummary(
        name=vhost.get("name", ""),
        description=vhost.get("description") or "",
        tags=tags if isinstance(tags, list) else [t for t in str(tags).split(",") if t],
        tracing=bool(vhost.get("tracing")),
        messages=int(vhost.get("messages") or 0),
        ready=int(vhost.get("messages_ready") or 0),
        unacked=int(vhost.get("messages_unacknowledged") or 0),
        publish_rate=_rate(stats, "publish"),
        deliver_rate=_rate(stats, "deliver_get"),
        nodes=dict(vhost.get("cluster_state") or {}),
    )


def _count(client, kind, vhost):
    """How many queues or exchanges the vhost holds; None when it is gone."""
    list_call = client.queues_page if kind == "queues" else client.exchanges_page
    try:
        # statistics left out: only the total is wanted, and they cost the broker most
        return list_call(
            vhost, page=1, page_size=1, columns=["name"], disable_stats=True
        ).total_count
    except BrokerNotFound:
        return None


def count_objects_in(client, summaries):
    """Each summary with its queues and exchanges counted. A vhost deleted since the
    list was read is left out: its counts answer 404, and a vhost another operator
    (or another program) removed must not turn the whole page into an error."""
    jobs = [(s, kind) for s in summaries for kind in ("queues", "exchanges")]
    with ThreadPoolExecutor(max_workers=6) as pool:
        counts = list(pool.map(lambda job: _count(client, job[1], job[0].name), jobs))
    gone = set()
    for (summary, kind), count in zip(jobs, counts, strict=True):
        if count is None:
            gone.add(summary.name)
        setattr(summary, kind, count)
    return [s for s in summaries if s.name not in gone]


def vhost_summaries(client, count_objects=True):
    """Every vhost with its message totals, rates, tracing and object counts.

    Returns (summaries, counted): counted is False when there were too many
    vhosts to count their queues and exchanges.
    """
    summaries = sorted((summarise(v) for v in client.vhosts() or []), key=lambda s: s.name)
    counted = count_objects and len(summaries) <= MAX_COUNTED_VHOSTS
    if counted and summaries:
        summaries = count_objects_in(client, summaries)
    return summaries, counted


def totals(summaries):
    """Sums over vhosts, for the table's foot."""
    return {
        "messages": sum(s.messages for s in summaries),
        "ready": sum(s.ready for s in summaries),
        "unacked": sum(s.unacked for s in summaries),
        "publish_rate": sum(s.publish_rate for s in summaries),
        "deliver_rate": sum(s.deliver_rate for s in summaries),
        "queues": sum(s.queues or 0 for s in summaries),
        "exchanges": sum(s.exchanges or 0 for s in summaries),
        "tracing": sum(1 for s in summaries if s.tracing),
    }


def forget_selection(request, broker=None):
    """Back to all vhosts, for when the chosen one has been deleted."""
    broker = broker or current_broker(request)
    request.session[_session_key(broker)] = ""
