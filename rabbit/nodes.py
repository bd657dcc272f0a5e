"""The management API's nodes: one node's figures, its memory breakdown, its listeners.

On top of rabbit/management_http.py like rabbit/management.py; the console's
node pages read the broker only through these calls.
"""

from typing import cast

from rabbit.management_http import JSON, ManagementHTTP, segment


def node(client: ManagementHTTP, name: str) -> JSON:
    """One node as /api/nodes lists it (memory, disk, descriptors, sockets, processes,
    uptime, alarms, enabled plugins, exchange types, applications, …)."""
    return cast(JSON, client.get(f"nodes/{segment(name)}"))


def memory(client: ManagementHTTP, name: str) -> JSON:
    """Where a node's memory goes: {category: bytes, …, "strategy", "total": {…}};
    {} while the node has no breakdown to give (it answers "not_available" then,
    for a while after it starts)."""
    answer = cast(JSON, client.get(f"nodes/{segment(name)}/memory"))
    found = answer.get("memory")
    return cast(JSON, found) if isinstance(found, dict) else {}


def listeners(client: ManagementHTTP) -> list[JSON]:
    """Every node's listeners (protocol, address, port, node), as the overview lists them."""
    answer = cast(JSON, client.get("overview", params={"columns": "listeners"}))
    return cast(list[JSON], answer.get("listeners") or [])
