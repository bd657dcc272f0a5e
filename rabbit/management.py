"""The management HTTP API's resources, as Warren uses them (rabbit/management_http.py
carries the requests, their errors and paging).
"""

from collections.abc import Sequence
from typing import Unpack, cast

from rabbit.management_http import (
    JSON,
    ManagementHTTP,
    Page,
    Paging,
    as_page,
    exchange_segment,
    segment,
)


class ManagementClient(ManagementHTTP):
    # --- broker -------------------------------------------------------------

    def overview(self) -> JSON:
        return self.get_object("overview")

    def nodes(self) -> list[JSON]:
        return self.get_list("nodes")

    def whoami(self) -> JSON:
        return self.get_object("whoami")

    # --- vhosts -------------------------------------------------------------

    def vhosts(self) -> list[JSON]:
        return self.get_list("vhosts")

    def vhost(self, vhost: str) -> JSON:
        return self.get_object(f"vhosts/{segment(vhost)}")

    def create_vhost(self, vhost: str, description: str = "", tags: str = "") -> None:
        self.put(f"vhosts/{segment(vhost)}", {"description": description, "tags": tags})
        self.put(
            f"permissions/{segment(vhost)}/{segment(self.username)}",
            {"configure": ".*", "write": ".*", "read": ".*"},
        )

    def delete_vhost(self, vhost: str) -> None:
        self.delete(f"vhosts/{segment(vhost)}")

    def set_tracing(self, vhost: str, enabled: bool) -> None:
        """Switch the firehose for one vhost, keeping its description and tags.

        A bare PUT would reset them (docs/architecture.md), so they are sent back as read.
        """
        current = self.vhost(vhost)
        tags = current.get("tags") or []
        self.put(
            f"vhosts/{segment(vhost)}",
            {
                "tracing": bool(enabled),
                "description": current.get("description") or "",
                "tags": ",".join(tags) if isinstance(tags, list) else str(tags),
            },
        )

    # --- queues -------------------------------------------------------------

    def queues_page(self, vhost: str | None = None, **paging: Unpack[Paging]) -> Page:
        path = f"queues/{segment(vhost)}" if vhost else "queues"
        return self.get_page(path, **paging)

    def queues(self, vhost: str | None = None, columns: Sequence[str] | None = None) -> list[JSON]:
        path = f"queues/{segment(vhost)}" if vhost else "queues"
        params = {"columns": ",".join(columns)} if columns else None
        return self.get_list(path, params=params)

    def queue(self, vhost: str, name: str, lengths_age: int | None = None) -> JSON:
        params: dict[str, int] | None = None
        if lengths_age:
            params = {"lengths_age": lengths_age, "lengths_incr": max(1, lengths_age // 12)}
            params.update(msg_rates_age=lengths_age, msg_rates_incr=params["lengths_incr"])
        return self.get_object(f"queues/{segment(vhost)}/{segment(name)}", params=params)

    def declare_queue(
        self,
        vhost: str,
        name: str,
        durable: bool = True,
        auto_delete: bool = False,
        arguments: JSON | None = None,
    ) -> None:
        self.put(
            f"queues/{segment(vhost)}/{segment(name)}",
            {"durable": durable, "auto_delete": auto_delete, "arguments": arguments or {}},
        )

    def delete_queue(self, vhost: str, name: str) -> None:
        self.delete(f"queues/{segment(vhost)}/{segment(name)}")

    def queue_bindings(self, vhost: str, name: str) -> list[JSON]:
        return self.get_list(f"queues/{segment(vhost)}/{segment(name)}/bindings")

    def peek(
        self,
        vhost: str,
        name: str,
        count: int = 10,
        truncate: int = 50000,
        encoding: str = "auto",
    ) -> list[JSON]:
        """The first messages of a queue, requeued (which marks them redelivered)."""
        return self._get_messages(vhost, name, count, "ack_requeue_true", encoding, truncate)

    def take(self, vhost: str, name: str, count: int = 1, truncate: int = 50000) -> list[JSON]:
        """The first messages of a queue, removed from it; payloads in base64."""
        return self._get_messages(vhost, name, count, "ack_requeue_false", "base64", truncate)

    def _get_messages(
        self, vhost: str, name: str, count: int, ackmode: str, encoding: str, truncate: int
    ) -> list[JSON]:
        return cast(
            list[JSON],
            self.post(
                f"queues/{segment(vhost)}/{segment(name)}/get",
                {"count": count, "ackmode": ackmode, "encoding": encoding, "truncate": truncate},
            ),
        )

    # --- exchanges and bindings ---------------------------------------------

    def exchanges_page(self, vhost: str | None = None, **paging: Unpack[Paging]) -> Page:
        path = f"exchanges/{segment(vhost)}" if vhost else "exchanges"
        return self.get_page(path, **paging)

    def exchanges(self, vhost: str | None = None) -> list[JSON]:
        return self.get_list(f"exchanges/{segment(vhost)}" if vhost else "exchanges")

    def exchange(self, vhost: str, name: str) -> JSON:
        return self.get_object(f"exchanges/{segment(vhost)}/{exchange_segment(name)}")

    def declare_exchange(
        self,
        vhost: str,
        name: str,
        type_: str = "direct",
        durable: bool = True,
        arguments: JSON | None = None,
    ) -> None:
        self.put(
            f"exchanges/{segment(vhost)}/{segment(name)}",
            {"type": type_, "durable": durable, "arguments": arguments or {}},
        )

    def delete_exchange(self, vhost: str, name: str) -> None:
        self.delete(f"exchanges/{segment(vhost)}/{segment(name)}")

    def exchange_bindings_out(self, vhost: str, name: str) -> list[JSON]:
        path = f"exchanges/{segment(vhost)}/{exchange_segment(name)}/bindings/source"
        return self.get_list(path)

    def exchange_bindings_in(self, vhost: str, name: str) -> list[JSON]:
        path = f"exchanges/{segment(vhost)}/{exchange_segment(name)}/bindings/destination"
        return self.get_list(path)

    def bindings(self, vhost: str | None = None) -> list[JSON]:
        return self.get_list(f"bindings/{segment(vhost)}" if vhost else "bindings")

    def bind(
        self,
        vhost: str,
        source: str,
        destination: str,
        destination_type: str = "q",
        routing_key: str = "",
        arguments: JSON | None = None,
    ) -> None:
        """destination_type is 'q' (queue) or 'e' (exchange)."""
        self.post(
            f"bindings/{segment(vhost)}/e/{segment(source)}/{destination_type}/{segment(destination)}",
            {"routing_key": routing_key, "arguments": arguments or {}},
        )

    def unbind(
        self,
        vhost: str,
        source: str,
        destination: str,
        destination_type: str,
        properties_key: str,
    ) -> None:
        self.delete(
            f"bindings/{segment(vhost)}/e/{segment(source)}/{destination_type}/"
            f"{segment(destination)}/{segment(properties_key)}"
        )

    def publish(
        self,
        vhost: str,
        exchange: str,
        routing_key: str,
        payload: str,
        properties: JSON | None = None,
        payload_encoding: str = "string",
    ) -> JSON:
        """Publish through the API; answers {'routed': bool}."""
        return cast(
            JSON,
            self.post(
                f"exchanges/{segment(vhost)}/{exchange_segment(exchange)}/publish",
                {
                    "properties": properties or {},
                    "routing_key": routing_key,
                    "payload": payload,
                    "payload_encoding": payload_encoding,
                },
            ),
        )

    # --- connections, channels, consumers -----------------------------------

    def connections_page(self, vhost: str | None = None, **paging: Unpack[Paging]) -> Page:
        path = f"vhosts/{segment(vhost)}/connections" if vhost else "connections"
        if vhost:
            return as_page(self.get(path))
        return self.get_page(path, **paging)

    def connection(self, name: str) -> JSON:
        return self.get_object(f"connections/{segment(name)}")

    def connection_channels(self, name: str) -> list[JSON]:
        return self.get_list(f"connections/{segment(name)}/channels")

    def close_connection(self, name: str, reason: str = "Closed from Warren") -> None:
        self.close_connection_because(name, reason)

    def channels_page(self, vhost: str | None = None, **paging: Unpack[Paging]) -> Page:
        if vhost:
            return as_page(self.get(f"vhosts/{segment(vhost)}/channels"))
        return self.get_page("channels", **paging)

    def channel(self, name: str) -> JSON:
        return self.get_object(f"channels/{segment(name)}")

    def consumers(self, vhost: str | None = None) -> list[JSON]:
        return self.get_list(f"consumers/{segment(vhost)}" if vhost else "consumers")

    # --- the rabbitmq_tracing plugin (benchmarks compare against it) --------

    def create_trace(
        self, vhost: str, name: str, pattern: str = "#", format_: str = "json"
    ) -> None:
        self.put(
            f"traces/{segment(vhost)}/{segment(name)}",
            {"format": format_, "pattern": pattern},
        )

    def delete_trace(self, vhost: str, name: str) -> None:
        self.delete(f"traces/{segment(vhost)}/{segment(name)}")

    def traces(self, vhost: str) -> list[JSON]:
        return self.get_list(f"traces/{segment(vhost)}")

    # --- broker console additions -------------------------------------------

    def policies(self, vhost: str) -> list[JSON]:
        return self.get_list(f"policies/{segment(vhost)}")

    def delete_queue_when(
        self, vhost: str, name: str, if_empty: bool = False, if_unused: bool = False
    ) -> None:
        """Delete a queue only while it is empty and/or has no consumers."""
        params: dict[str, str | int] = {}
        if if_empty:
            params["if-empty"] = "true"
        if if_unused:
            params["if-unused"] = "true"
        self.delete(f"queues/{segment(vhost)}/{segment(name)}", params=params or None)

    def delete_exchange_when(self, vhost: str, name: str, if_unused: bool = False) -> None:
        """Delete an exchange, optionally only while nothing is bound from it."""
        params = {"if-unused": "true"} if if_unused else None
        self.delete(f"exchanges/{segment(vhost)}/{segment(name)}", params=params)

    def purge(self, vhost: str, name: str) -> None:
        """Empty a queue. The broker answers 406 to this call when asked for JSON,
        so it goes out accepting anything."""
        self._send(
            "DELETE", f"queues/{segment(vhost)}/{segment(name)}/contents", headers={"Accept": "*/*"}
        )

    def close_connection_because(self, name: str, reason: str) -> None:
        """Close a client connection; the client is told `reason` (X-Reason header)."""
        self._send("DELETE", f"connections/{segment(name)}", headers={"X-Reason": reason[:200]})

    # --- clusters (rabbit.cluster) ------------------------------------------

    def for_url(self, base_url: str) -> "ManagementClient":
        """The same credentials and timeout against another URL: another node's listener."""
        return ManagementClient(base_url, *self._credentials)

    def overview_columns(self, columns: Sequence[str]) -> JSON:
        """Only these keys of /api/overview (node, listeners: cheap on a big cluster)."""
        return self.get_object("overview", params={"columns": ",".join(columns)})

    def nodes_columns(self, columns: Sequence[str]) -> list[JSON]:
        return self.get_list("nodes", params={"columns": ",".join(columns)})
