"""The graph of one vhost: exchanges, queues, bindings, dead-letter and alternate routes.

Small vhosts are loaded whole (three list calls) and drawn, or cut down to the
neighbourhood of one object in memory. A vhost too big for that is never
listed in full: a neighbourhood is then built from the object's own bindings
with a few targeted calls, and the graph says what it left out.
"""

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from console import plumbing
from console.exchanges import display_name, exchange_row, policy_definitions
from console.queues import dead_letter_target
from rabbit.management_http import BrokerNotFound

# Up to this many queues + exchanges a vhost is loaded whole.
FULL_LOAD_LIMIT = 2000
# Up to this many nodes a whole vhost is drawn without choosing a focus.
DRAW_LIMIT = 250
# Bindings followed from one object when the vhost is too big to load.
EDGE_LIMIT = 200
# Neighbouring exchanges asked about (type, upstream bindings) in that case.
DETAIL_LIMIT = 25

QUEUE_COLUMNS = [
    "name",
    "type",
    "arguments",
    "policy",
    "effective_policy_definition",
    "messages",
    "consumers",
]


def exchange_id(name):
    return "e:" + name


def queue_id(name):
    return "q:" + name


@dataclass
class Graph:
    vhost: str
    nodes: dict = field(default_factory=dict)
    edges: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    mode: str = "full"
    focus: str = ""

    def add_exchange(self, name, type_="", internal=False, missing=False):
        node_id = exchange_id(name)
        node = self.nodes.setdefault(
            node_id,
            {"id": node_id, "kind": "exchange", "name": name, "label": display_name(name)},
        )
        if type_:
            node["type"] = type_
        node["internal"] = node.get("internal", False) or internal
        node["missing"] = missing
        return node_id

    def add_queue(self, name, type_="", messages=None, consumers=None):
        node_id = queue_id(name)
        node = self.nodes.setdefault(
            node_id, {"id": node_id, "kind": "queue", "name": name, "label": name}
        )
        if type_:
            node["type"] = type_
        if messages is not None:
            node["messages"] = messages
        if consumers is not None:
            node["consumers"] = consumers
        return node_id

    def add_edge(self, source, target, kind, label=""):
        edge_id = f"{kind}|{source}|{target}|{label}"
        self.edges.setdefault(
            edge_id,
            {"id": edge_id, "source": source, "target": target, "kind": kind, "label": label},
        )

    def add_binding(self, raw):
        if not raw.get("source"):
            return  # the default exchange's implicit binding to every queue
        source = self.add_exchange(raw["source"])
        destination = raw.get("destination", "")
        if raw.get("destination_type") == "exchange":
            target = self.add_exchange(destination)
        else:
            target = self.add_queue(destination)
        label = raw.get("routing_key", "")
        arguments = raw.get("arguments") or {}
        if arguments:
            label = (label + " " if label else "") + ", ".join(
                f"{k}={v}" for k, v in sorted(arguments.items())
            )
        self.add_edge(source, target, "binding", label)

    def add_dead_letter(self, queue_name, raw_queue):
        target = dead_letter_target(raw_queue)
        if target is None:
            return None
        key = "" if target.routing_key is None else str(target.routing_key)
        label = "dead letters" + (f" → {key}" if key else "")
        if target.exchange == "":
            if key:
                # The default exchange delivers straight to the queue named by the key.
                self.add_edge(queue_id(queue_name), self.add_queue(key), "dead-letter", label)
            return None
        self.add_edge(
            queue_id(queue_name), self.add_exchange(target.exchange), "dead-letter", label
        )
        return target.exchange

    def add_alternate(self, exchange_name, alternate):
        if alternate is None:
            return
        self.add_edge(
            exchange_id(exchange_name), self.add_exchange(alternate), "alternate", "unroutable"
        )

    def drop_idle_builtins(self):
        """Leave out amq.* exchanges nothing is bound to or from: every vhost has them."""
        connected = {e["source"] for e in self.edges.values()} | {
            e["target"] for e in self.edges.values()
        }
        for node_id in [
            n["id"]
            for n in self.nodes.values()
            if n["kind"] == "exchange" and n["name"].startswith("amq.") and n["id"] not in connected
        ]:
            del self.nodes[node_id]

    def drop_plumbing(self):
        """Leave out Warren's own queues and exchange (console/plumbing.py) and their edges;
        says so in a note when there were any."""
        gone = {
            node_id
            for node_id, node in self.nodes.items()
            if (node["kind"] == "queue" and plumbing.is_warren_queue(node["name"]))
            or (node["kind"] == "exchange" and plumbing.is_warren_exchange(node["name"]))
        }
        if not gone:
            return
        for node_id in gone:
            del self.nodes[node_id]
        self.edges = {
            key: edge
            for key, edge in self.edges.items()
            if edge["source"] not in gone and edge["target"] not in gone
        }
        self.notes.append(
            f"Warren's own tap queue, drop counter and their bindings ({len(gone)} objects) "
            "are left out: tick “Warren's plumbing” to draw them."
        )

    def neighbourhood(self, node_id, depth=1):
        """A new Graph of the nodes within `depth` edges of node_id (either direction)."""
        adjacent = {}
        for edge in self.edges.values():
            adjacent.setdefault(edge["source"], set()).add(edge["target"])
            adjacent.setdefault(edge["target"], set()).add(edge["source"])
        keep = {node_id}
        frontier = deque([(node_id, 0)])
        while frontier:
            current, distance = frontier.popleft()
            if distance >= depth:
                continue
            for other in adjacent.get(current, ()):
                if other not in keep:
                    keep.add(other)
                    frontier.append((other, distance + 1))
        sub = Graph(self.vhost, mode="neighbourhood", focus=node_id, notes=list(self.notes))
        sub.nodes = {k: dict(v) for k, v in self.nodes.items() if k in keep}
        sub.edges = {
            k: v for k, v in self.edges.items() if v["source"] in keep and v["target"] in keep
        }
        return sub

    def as_json(self):
        nodes = []
        for node in self.nodes.values():
            data = dict(node)
            data["focus"] = node["id"] == self.focus
            nodes.append({"group": "nodes", "data": data})
        edges = [{"group": "edges", "data": dict(edge)} for edge in self.edges.values()]
        return {
            "vhost": self.vhost,
            "mode": self.mode,
            "focus": self.focus,
            "notes": self.notes,
            "counts": {
                "exchanges": sum(1 for n in self.nodes.values() if n["kind"] == "exchange"),
                "queues": sum(1 for n in self.nodes.values() if n["kind"] == "queue"),
                "edges": len(self.edges),
            },
            "elements": nodes + edges,
        }


def sizes(client, vhost):
    """(queues, exchanges) in a vhost, from two one-item pages."""
    counted = {"page": 1, "page_size": 1, "columns": ["name"], "disable_stats": True}
    queues = client.queues_page(vhost, **counted).total_count
    exchanges = client.exchanges_page(vhost, **counted).total_count
    return queues, exchanges


def first_vhost_with_queues(client, names, limit=20):
    """The vhost a graph opens on when none is chosen: `/` or the first (by name) holding
    a queue of the user's, not only Warren's plumbing; `/` (or the first) when none does.
    A vhost deleted since `names` was read (404) is passed over, not an error."""
    ordered = sorted(names, key=lambda name: (name != "/", name))
    for name in ordered[:limit]:
        try:
            page = client.queues_page(
                name, page=1, page_size=3, columns=["name"], disable_stats=True
            )
        except BrokerNotFound:
            continue
        if any(not plumbing.is_warren_queue(q.get("name", "")) for q in page.items):
            return name
    return ordered[0] if ordered else "/"


def full_graph(client, vhost, keep_idle_builtins=False):
    """Every exchange, queue and binding of a vhost (call only when sizes allow)."""
    graph = Graph(vhost)
    definitions = policy_definitions(client.policies(vhost))
    for raw in client.exchanges(vhost) or []:
        if raw.get("name", "") == "":
            continue
        row = exchange_row(raw, definitions)
        graph.add_exchange(row.name, row.type, row.internal)
        graph.add_alternate(row.name, row.alternate_exchange)
    for raw in client.queues(vhost, columns=QUEUE_COLUMNS) or []:
        graph.add_queue(raw["name"], raw.get("type", ""), raw.get("messages"), raw.get("consumers"))
        graph.add_dead_letter(raw["name"], raw)
    for raw in client.bindings(vhost) or []:
        graph.add_binding(raw)
    _mark_missing(graph, client, vhost, known_complete=True)
    if not keep_idle_builtins:
        graph.drop_idle_builtins()
    return graph


def _mark_missing(graph, client, vhost, known_complete):
    """Flag exchanges named as DLX/AE that do not exist: their messages are dropped."""
    for node in graph.nodes.values():
        if node["kind"] != "exchange" or node.get("type"):
            continue
        if node["name"].startswith("amq."):
            continue
        if known_complete:
            node["missing"] = True
        else:
            try:
                node["type"] = client.exchange(vhost, node["name"]).get("type", "")
            except BrokerNotFound:
                node["missing"] = True


def _cap(graph, items, what):
    if len(items) > EDGE_LIMIT:
        graph.notes.append(
            f"Showing {EDGE_LIMIT} of {len(items)} {what}; the vhost is too big to draw them all."
        )
        return items[:EDGE_LIMIT]
    return items


def _exchange_context(client, vhost, name):
    """(raw exchange or None, bindings into it) for a neighbouring exchange."""
    try:
        raw = client.exchange(vhost, name)
        upstream = client.exchange_bindings_in(vhost, name) or []
    except BrokerNotFound:
        return None, []
    return raw, upstream


def _add_exchange_details(graph, client, vhost, names, definitions):
    names = [n for n in names if n][:DETAIL_LIMIT]
    with ThreadPoolExecutor(max_workers=6) as pool:
        contexts = list(pool.map(lambda n: _exchange_context(client, vhost, n), names))
    for name, (raw, upstream) in zip(names, contexts, strict=True):
        if raw is None:
            graph.nodes[exchange_id(name)]["missing"] = True
            continue
        row = exchange_row(raw, definitions)
        graph.add_exchange(row.name, row.type, row.internal)
        graph.add_alternate(row.name, row.alternate_exchange)
        for binding in _cap(graph, upstream, f"bindings into '{name}'"):
            graph.add_binding(binding)


def focused_graph(client, vhost, kind, name):
    """The neighbourhood of one queue or exchange, without listing the vhost."""
    graph = Graph(vhost, mode="neighbourhood")
    definitions = policy_definitions(client.policies(vhost))
    if kind == "queue":
        raw = client.queue(vhost, name)
        graph.focus = graph.add_queue(
            name, raw.get("type", ""), raw.get("messages"), raw.get("consumers")
        )
        dlx = graph.add_dead_letter(name, raw)
        bindings = [b for b in client.queue_bindings(vhost, name) or [] if b.get("source")]
        for binding in _cap(graph, bindings, f"bindings of queue '{name}'"):
            graph.add_binding(binding)
        neighbours = [b["source"] for b in bindings]
        if dlx is not None:
            for binding in _cap(
                graph,
                client.exchange_bindings_out(vhost, dlx) or [],
                f"bindings of dead-letter exchange '{dlx}'",
            ):
                graph.add_binding(binding)
            neighbours.insert(0, dlx)
        _add_exchange_details(graph, client, vhost, list(dict.fromkeys(neighbours)), definitions)
    else:
        raw = client.exchange(vhost, name)
        row = exchange_row(raw, definitions)
        graph.focus = graph.add_exchange(row.name, row.type, row.internal)
        graph.add_alternate(row.name, row.alternate_exchange)
        out = client.exchange_bindings_out(vhost, name) or []
        upstream = client.exchange_bindings_in(vhost, name) or []
        for binding in _cap(graph, out, f"bindings from '{name}'") + _cap(
            graph, upstream, f"bindings into '{name}'"
        ):
            graph.add_binding(binding)
        others = [b["destination"] for b in out if b.get("destination_type") == "exchange"]
        others += [b["source"] for b in upstream]
        if row.alternate_exchange:
            others.insert(0, row.alternate_exchange)
        _add_exchange_details(graph, client, vhost, list(dict.fromkeys(others)), definitions)
        graph.notes.append(
            "This vhost is too big to search every queue's dead-letter settings: queues that "
            "dead-letter into this exchange are not drawn. Focus on a queue to see its own."
        )
    return graph


def build(client, vhost, focus_kind=None, focus_name=None, depth=1, show_plumbing=False):
    """The graph the topology page draws, as JSON-ready data (without Warren's own
    plumbing unless asked, or unless the focus is on a piece of it)."""
    queues, exchanges = sizes(client, vhost)
    counts = {"queues": queues, "exchanges": exchanges}
    focus = None
    if focus_kind in ("queue", "exchange") and focus_name is not None:
        focus = queue_id(focus_name) if focus_kind == "queue" else exchange_id(focus_name)
    if queues + exchanges <= FULL_LOAD_LIMIT:
        graph = full_graph(client, vhost, keep_idle_builtins=True)
        focus_is_plumbing = focus is not None and (
            plumbing.is_warren_queue(focus_name) or plumbing.is_warren_exchange(focus_name)
        )
        if not show_plumbing and not focus_is_plumbing:
            graph.drop_plumbing()
        if focus is None:
            graph.drop_idle_builtins()  # after the plumbing: the trace exchange may go too
        if focus is not None:
            if focus not in graph.nodes:
                raise BrokerNotFound(f"There is no {focus_kind} '{focus_name}' in this vhost.", 404)
            graph = graph.neighbourhood(focus, depth)
        elif len(graph.nodes) > DRAW_LIMIT:
            graph = Graph(vhost, mode="too-big")
            graph.notes.append(
                f"This vhost has {queues:,} queues and {exchanges:,} exchanges: too many to "
                "draw at once. Choose a queue or exchange to see its neighbourhood."
            )
    elif focus is not None:
        graph = focused_graph(client, vhost, focus_kind, focus_name)
        graph.notes.insert(
            0,
            f"This vhost has {queues:,} queues and {exchanges:,} exchanges, so only the "
            "direct neighbours are loaded (depth is 1).",
        )
    else:
        graph = Graph(vhost, mode="too-big")
        graph.notes.append(
            f"This vhost has {queues:,} queues and {exchanges:,} exchanges: too many to load. "
            "Choose a queue or exchange to see its neighbourhood."
        )
    data = graph.as_json()
    data["vhost_counts"] = counts
    return data
