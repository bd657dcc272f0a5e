"""Tracing on every node of a RabbitMQ cluster.

RabbitMQ keeps the firehose switch per vhost *and per node* (docs/architecture.md, firehose):
`PUT /api/vhosts/{vhost}` with `tracing` switches it only on the node whose
management listener serves the request, and a node that restarts comes back
with it off. Checked on RabbitMQ 3.10.8 with two nodes: `GET /api/vhosts/{vhost}`
answers `tracing` from the node that serves the request as well (the same
answer as `rabbitmqctl -n NODE list_vhosts name tracing`), while
`/api/nodes/{node}` says nothing about tracing. So each node is asked, and
switched, through its own listener.

Nodes come from the node behind the configured management URL: `/api/nodes`
(names, running) and `/api/overview` `listeners` (per node: protocol
http/https, ip_address, port). A listener bound to one address is reached
there; one bound to every address (`::`, `0.0.0.0`, which 3.10 also reports
when `management.tcp.ip` is set) at the host of the node name (`rabbit@HOST`).
Where those names don't resolve from Warren's machine,
WARREN_MANAGEMENT_NODE_URLS maps node names to URLs (read by
console/env.py). A URL is believed only
after it answers as its node: a load balancer or a port forward could answer
for another, and that node's switch would be read in its place.
"""

import ipaddress
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias
from urllib.parse import urlsplit, urlunsplit

from rabbit.management import ManagementClient
from rabbit.management_http import JSON, BrokerError, BrokerNotFound

log = logging.getLogger("tracer.tap")

TracingState: TypeAlias = Literal["on", "off", "unreachable"]
ON: Final = "on"
OFF: Final = "off"
UNREACHABLE: Final = "unreachable"
REDISCOVER_S = 30.0  # nodes join and leave rarely; a failing node rediscovers at once
STATUS_MAX_AGE_S = 5.0
STATUS_TIMEOUT_S = 2.0

# Switching tracing for several vhosts at once can silently drop some (fixed
# only in 4.2.9/4.3.3): the tap's readers switch one at a time.
_switch_lock = threading.Lock()


class TracingUnchecked(BrokerError):
    """Some node's tracing could not be read or switched on."""

    banner = "Tracing cannot be checked on every node"


# --- where a node's management listener is -----------------------------------------


def node_host(node_name: str) -> str:
    """The host part of a node name: 'rabbit@db-1' -> 'db-1'."""
    return node_name.partition("@")[2] or node_name


def is_specific(ip: str) -> bool:
    """A listener bound to one address (reachable there), not to every address."""
    try:
        return not ipaddress.ip_address(ip).is_unspecified
    except ValueError:
        return False


def _netloc(host: str, port: int) -> str:
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    return f"{host}:{port}"


def listener_url(listener: JSON, path: str = "/") -> str:
    """The management URL of one `/api/overview` listener entry."""
    ip: str = listener.get("ip_address") or ""
    host = ip if is_specific(ip) else node_host(listener["node"])
    scheme = "https" if listener.get("protocol") == "https" else "http"
    return urlunsplit((scheme, _netloc(host, listener["port"]), path or "/", "", ""))


def management_urls(
    listeners: Iterable[JSON] | None, prefer_scheme: str = "http", path: str = "/"
) -> dict[str, str]:
    """{node: URL} from the overview's listeners; a node's listener of prefer_scheme wins."""
    urls: dict[str, str] = {}
    for listener in listeners or ():
        protocol = listener.get("protocol")
        if protocol not in ("http", "https") or "node" not in listener:
            continue
        node = listener["node"]
        if node not in urls or protocol == prefer_scheme:
            urls[node] = listener_url(listener, path)
    return urls


# --- discovery -----------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    name: str
    url: str  # "" when the node cannot be asked
    running: bool
    problem: str = ""  # why it cannot be asked


def _answers_as(client: ManagementClient, url: str, node: str) -> str:
    """'' when the listener at url is the node's own, else why not."""
    try:
        answered = client.for_url(url).overview_columns(["node"]).get("node")
    except BrokerError as error:
        return error.message
    if answered != node:
        return f"{url} answers as node {answered}, not as {node}"
    return ""


def discover(client: ManagementClient, node_urls: Mapping[str, str] | None = None) -> list[Node]:
    """The cluster's nodes as the node behind `client` sees them, each with a URL of its own."""
    overview = client.overview_columns(["node", "listeners"])
    names = client.nodes_columns(["name", "running"])
    entry = urlsplit(client.base_url)
    derived = management_urls(overview.get("listeners"), entry.scheme, entry.path or "/")
    explicit = node_urls or {}
    nodes: list[Node] = []
    for item in sorted(names, key=lambda n: n["name"]):
        name, running = item["name"], bool(item.get("running"))
        if not running:
            nodes.append(Node(name, "", False, f"not running (as {overview.get('node')} sees it)"))
            continue
        candidates: list[str | None]
        if name in explicit:
            candidates = [explicit[name]]
        else:
            candidates = [derived.get(name)]
            if name == overview.get("node"):
                candidates.append(client.base_url)  # reachable, unless it is a load balancer
        urls = list(dict.fromkeys(url for url in candidates if url))
        if not urls:
            nodes.append(Node(name, "", True, "it has no management listener"))
            continue
        problems: list[str] = []
        for url in urls:
            problem = _answers_as(client, url, name)
            if not problem:
                nodes.append(Node(name, url, True))
                break
            problems.append(problem)
        else:
            hint = "" if name in explicit else " (set WARREN_MANAGEMENT_NODE_URLS)"
            nodes.append(Node(name, "", True, "; ".join(problems) + hint))
    return nodes


# --- tracing per node ----------------------------------------------------------------


@dataclass(frozen=True)
class NodeTracing:
    node: str
    state: TracingState  # after switching
    was_off: bool = False  # found off by this call
    switched: bool = False  # switched (on, or off by switch_off) by this call
    reason: str = ""


@dataclass(frozen=True)
class TracingReport:
    vhost: str
    nodes: tuple[NodeTracing, ...]

    def states(self) -> dict[str, TracingState]:
        return {node.node: node.state for node in self.nodes}

    @property
    def found_off(self) -> bool:
        return any(node.was_off for node in self.nodes)

    @property
    def switched(self) -> list[str]:
        return [node.node for node in self.nodes if node.switched]

    @property
    def everywhere(self) -> bool:
        return bool(self.nodes) and all(node.state == ON for node in self.nodes)

    def trouble(self) -> str:
        """The nodes not tracing now, in words."""
        return "; ".join(
            f"node {node.node} is {node.state}" + (f": {node.reason}" if node.reason else "")
            for node in self.nodes
            if node.state != ON
        )


class Cluster:
    """The nodes behind one management client; rediscovered now and then."""

    def __init__(
        self, client: ManagementClient, node_urls: Mapping[str, str] | None = None
    ) -> None:
        self.client = client
        self.node_urls = dict(node_urls or {})
        self._nodes: list[Node] | None = None
        self._found_at = 0.0
        self._stale = False
        self._lock = threading.Lock()

    def nodes(self) -> list[Node]:
        with self._lock:
            age = time.monotonic() - self._found_at
            if self._nodes is None or self._stale or age > REDISCOVER_S:
                self._nodes = discover(self.client, self.node_urls)
                self._found_at = time.monotonic()
                self._stale = any(node.problem for node in self._nodes)
            return self._nodes

    def _forget(self) -> None:
        with self._lock:
            self._stale = True

    def _read(self, node: Node, vhost: str) -> bool:
        return bool(self.client.for_url(node.url).vhost(vhost).get("tracing"))

    def tracing(self, vhost: str, switch_on: bool = False) -> TracingReport:
        """Each node's tracing for `vhost`, switched on where off when asked to."""
        results: list[NodeTracing] = []
        for node in self.nodes():
            if node.problem:
                results.append(NodeTracing(node.name, UNREACHABLE, reason=node.problem))
                continue
            try:
                results.append(self._one(node, vhost, switch_on))
            except BrokerNotFound:
                raise  # the vhost is gone: nothing to do on any node
            except BrokerError as error:
                self._forget()
                results.append(NodeTracing(node.name, UNREACHABLE, reason=error.message))
        return TracingReport(vhost, tuple(results))

    def switch_off(self, vhost: str) -> TracingReport:
        """Tracing for `vhost` off on every node, one node at a time, each read back."""
        results: list[NodeTracing] = []
        for node in self.nodes():
            if node.problem:
                results.append(NodeTracing(node.name, UNREACHABLE, reason=node.problem))
                continue
            try:
                with _switch_lock:
                    self.client.for_url(node.url).set_tracing(vhost, False)
                    on = self._read(node, vhost)
            except BrokerNotFound:
                raise
            except BrokerError as error:
                self._forget()
                results.append(NodeTracing(node.name, UNREACHABLE, reason=error.message))
                continue
            if on:
                reason = "the broker did not switch it off"
                results.append(NodeTracing(node.name, ON, reason=reason))
            else:
                results.append(NodeTracing(node.name, OFF, switched=True))
        return TracingReport(vhost, tuple(results))

    def _one(self, node: Node, vhost: str, switch_on: bool) -> NodeTracing:
        if self._read(node, vhost):
            return NodeTracing(node.name, ON)
        if not switch_on:
            return NodeTracing(node.name, OFF, was_off=True)
        with _switch_lock:
            self.client.for_url(node.url).set_tracing(vhost, True)
            on = self._read(node, vhost)
        if on:
            log.info("tap switched tracing on for vhost %r on node %s", vhost, node.name)
            return NodeTracing(node.name, ON, was_off=True, switched=True)
        return NodeTracing(node.name, OFF, was_off=True, reason="the broker did not switch it on")


# (management URL, user, node URLs, credentials and timeout)
_ClusterKey: TypeAlias = tuple[str, str, tuple[tuple[str, str], ...], tuple[str, str, float]]
_clusters: dict[_ClusterKey, Cluster] = {}
_clusters_lock = threading.Lock()


def for_client(client: ManagementClient) -> Cluster:
    """The Cluster behind `client`, kept between calls (discovery costs a few requests)."""
    from django.conf import settings

    node_urls: dict[str, str] = {}
    if client.base_url == settings.WARREN_MANAGEMENT_URL:
        node_urls = settings.WARREN_MANAGEMENT_NODE_URLS  # names of the default broker's nodes
    key: _ClusterKey = (
        client.base_url,
        client.username,
        tuple(sorted(node_urls.items())),
        client._credentials,
    )
    with _clusters_lock:
        cluster = _clusters.get(key)
        if cluster is None:
            cluster = _clusters[key] = Cluster(client, node_urls)
        return cluster


def switch_tracing_off(client: ManagementClient, vhost: str) -> TracingReport:
    """Tracing for `vhost` off on every node (`manage.py untrace`); the report per node."""
    return for_client(client).switch_off(vhost)


def ensure_tracing(client: ManagementClient, vhost: str) -> TracingReport:
    """Switch tracing for `vhost` on on every node where it is off; the report per node."""
    return for_client(client).tracing(vhost, switch_on=True)


def tracing_was_on_everywhere(client: ManagementClient, vhost: str) -> bool:
    """For the tap: switch tracing on wherever it is off; was it on everywhere already?

    False when some node was found off (the tap records a gap since it last saw
    tracing on everywhere). Raises TracingUnchecked when some node cannot be
    read or switched and none was found off, so the tap shows a problem and, the
    node back and switched on, records the whole stretch as one gap.
    """
    report = ensure_tracing(client, vhost)
    if report.found_off and report.switched:
        return False
    if not report.everywhere:
        raise TracingUnchecked(report.trouble() or "the broker lists no node")
    return True


# --- what /api/tap/status shows -------------------------------------------------------

# {vhost: {node: state}}, and the problem in words ("" when there is none)
TracingMap: TypeAlias = tuple[dict[str, dict[str, TracingState]], str]
_status_cache: dict[tuple[str, tuple[str, ...]], tuple[float, TracingMap]] = {}
_status_lock = threading.Lock()


def tracing_map(vhosts: Sequence[str], client: ManagementClient | None = None) -> TracingMap:
    """({vhost: {node: "on"|"off"|"unreachable"}}, problem in words or ""), read only.

    Asked of the broker (not of the tap), so it is true even with no tap
    running; kept STATUS_MAX_AGE_S so that a page refreshing every second
    doesn't ask every node every time.
    """
    if client is None:
        from rabbit.brokers import default_broker

        client = default_broker().client(timeout=STATUS_TIMEOUT_S)
    key = (client.base_url, tuple(vhosts))
    with _status_lock:
        cached = _status_cache.get(key)
        if cached and time.monotonic() - cached[0] < STATUS_MAX_AGE_S:
            return cached[1]
    states: dict[str, dict[str, TracingState]] = {}
    problem = ""
    try:
        cluster = for_client(client)
        for vhost in vhosts:
            try:
                states[vhost] = cluster.tracing(vhost).states()
            except BrokerNotFound:
                states[vhost] = {}
    except BrokerError as error:
        problem = f"cannot ask the broker which nodes trace: {error.message}"
    with _status_lock:
        if len(_status_cache) > 100:  # keys are lists of vhosts: keep the memory small
            _status_cache.clear()
        _status_cache[key] = (time.monotonic(), (states, problem))
    return states, problem


def tracing_by_node(client: ManagementClient) -> TracingMap:
    """({vhost: {node: state}}, problem) for every vhost: one vhosts call per node.

    Each node's listener answers `tracing` as that node has it, so the list
    asked of each node gives the whole map in as many calls as there are nodes
    (the Vhosts page: one call per vhost and node would grow with the vhosts).
    """
    states: dict[str, dict[str, TracingState]] = {}
    try:
        nodes = for_client(client).nodes()
    except BrokerError as error:
        return {}, f"cannot ask the broker which nodes trace: {error.message}"
    problems: list[str] = []
    for node in nodes:
        listing: list[JSON] | None = None
        if not node.problem:
            try:
                listing = node_vhosts(client.for_url(node.url))
            except BrokerError as error:
                problems.append(f"node {node.name}: {error.message}")
        else:
            problems.append(f"node {node.name}: {node.problem}")
        for vhost in listing or ():
            states.setdefault(vhost["name"], {})[node.name] = ON if vhost.get("tracing") else OFF
        if listing is None:
            for per_node in states.values():
                per_node.setdefault(node.name, UNREACHABLE)
    for per_node in states.values():  # a vhost a later node listed: earlier unreachable ones
        for node in nodes:
            per_node.setdefault(node.name, UNREACHABLE)
    return states, "; ".join(problems)


def node_vhosts(client: ManagementClient) -> list[JSON]:
    """Every vhost's name and tracing, as the node behind `client` has them."""
    return client.get_list("vhosts", params={"columns": "name,tracing"})
