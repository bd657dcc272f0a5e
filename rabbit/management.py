"""The one module that speaks to RabbitMQ's management HTTP API.

Every call has a timeout, and every failure becomes one of the BrokerError
kinds below carrying the broker's own words, so pages can show a banner
instead of failing.
"""

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, TypedDict, Unpack, cast
from urllib.parse import quote

import httpx

DEFAULT_EXCHANGE_PATH_NAME = "amq.default"
MAX_PAGE_SIZE = 500

# One object of the management API's JSON: its keys vary with the broker's
# version, plugins and the `columns` asked for, so its values stay untyped.
JSON: TypeAlias = dict[str, Any]
QueryParams: TypeAlias = Mapping[str, str | int]


class BrokerError(Exception):
    """Anything that kept the management API from answering as asked."""

    banner: str = "The broker's management API gave an error"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class BrokerUnavailable(BrokerError):
    banner = "The broker cannot be reached"


class BrokerAuthFailed(BrokerError):
    banner = "The broker refused Warren's credentials"


class BrokerNotFound(BrokerError):
    banner = "The broker has no such object"


class BrokerRejected(BrokerError):
    banner = "The broker refused the request"


def segment(name: str) -> str:
    """One path segment: vhost '/' becomes %2F, '<x y>' is escaped, nothing passes raw."""
    return quote(name, safe="")


def exchange_segment(name: str) -> str:
    return segment(name or DEFAULT_EXCHANGE_PATH_NAME)


@dataclass(frozen=True)
class Page:
    items: list[JSON]
    page: int
    page_count: int
    page_size: int
    filtered_count: int
    total_count: int


class Paging(TypedDict, total=False):
    """What the *_page calls pass on to ManagementClient.get_page."""

    page: int
    page_size: int
    name: str
    use_regex: bool
    sort: str
    sort_reverse: bool
    columns: Sequence[str] | None
    disable_stats: bool


# One pool of kept-alive connections per broker and credentials, shared by the
# short-lived clients every request makes.
_clients: dict[tuple[str, str, str, float], httpx.Client] = {}
_clients_lock = threading.Lock()


def _http_client(base_url: str, username: str, password: str, timeout: float) -> httpx.Client:
    key = (base_url, username, password, timeout)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = httpx.Client(
                base_url=base_url.rstrip("/") + "/api/",
                auth=(username, password),
                timeout=httpx.Timeout(timeout),
                headers={"Accept": "application/json"},
                limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
            )
            _clients[key] = client
        return client


def _broker_reason(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(data, dict):
        return str(data.get("reason") or data.get("error") or data)
    return str(data)[:300]


class ManagementClient:
    def __init__(self, base_url: str, username: str, password: str, timeout: float = 5.0) -> None:
        self.base_url = base_url
        self.username = username
        self._http = _http_client(base_url, username, password, timeout)
        self._credentials = (username, password, timeout)  # for for_url()

    # --- transport --------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        params: QueryParams | None = None,
        json: JSON | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """The answer's JSON (an object or a list), or None when it has no body."""
        response = self._send(method, path, params=params, json=json, headers=headers)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise BrokerUnavailable(
                "The management API answered with something that is not JSON."
            ) from None

    def _send(
        self,
        method: str,
        path: str,
        params: QueryParams | None = None,
        json: JSON | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One HTTP call, its failures mapped to the BrokerError kinds."""
        # A kept-alive connection the broker closed meanwhile fails on first use;
        # a GET changes nothing, so it is asked once more on a fresh connection.
        attempts = 2 if method == "GET" else 1
        for attempt in range(attempts):
            try:
                response = self._http.request(
                    method, path, params=params, json=json, headers=headers
                )
                break
            except httpx.TimeoutException:
                raise BrokerUnavailable(
                    f"The management API at {self.base_url} did not answer in time."
                ) from None
            except httpx.RemoteProtocolError as error:
                if attempt + 1 < attempts:
                    continue
                raise BrokerUnavailable(
                    f"The management API at {self.base_url} dropped the connection: {error}."
                ) from None
            except httpx.HTTPError as error:
                raise BrokerUnavailable(
                    f"The management API at {self.base_url} cannot be reached: {error}."
                ) from None
        if response.status_code == 401:
            raise BrokerAuthFailed(
                f"The management API refused user {self.username!r}: {_broker_reason(response)}.",
                status=401,
            )
        if response.status_code == 404:
            raise BrokerNotFound(
                f"Not found on the broker: {_broker_reason(response)}.", status=404
            )
        if response.status_code >= 500:
            raise BrokerUnavailable(
                f"The management API failed ({response.status_code}): {_broker_reason(response)}.",
                status=response.status_code,
            )
        if response.status_code >= 400:
            raise BrokerRejected(
                f"The broker refused the request ({response.status_code}): "
                f"{_broker_reason(response)}.",
                status=response.status_code,
            )
        return response

    def get(self, path: str, params: QueryParams | None = None) -> Any:
        return self.request("GET", path, params=params)

    def put(self, path: str, json: JSON | None = None) -> Any:
        return self.request("PUT", path, json=json if json is not None else {})

    def post(self, path: str, json: JSON | None = None) -> Any:
        return self.request("POST", path, json=json if json is not None else {})

    def delete(self, path: str, params: QueryParams | None = None) -> Any:
        return self.request("DELETE", path, params=params)

    def get_page(
        self,
        path: str,
        page: int = 1,
        page_size: int = 100,
        name: str = "",
        use_regex: bool = False,
        sort: str = "",
        sort_reverse: bool = False,
        columns: Sequence[str] | None = None,
        disable_stats: bool = False,
    ) -> Page:
        """A page of a list call, filtered and sorted by the broker itself."""
        params: dict[str, str | int] = {
            "page": max(1, page),
            "page_size": min(max(1, page_size), MAX_PAGE_SIZE),
        }
        if name:
            params["name"] = name
            params["use_regex"] = "true" if use_regex else "false"
        if sort:
            params["sort"] = sort
            params["sort_reverse"] = "true" if sort_reverse else "false"
        if columns:
            params["columns"] = ",".join(columns)
        if disable_stats:
            params["disable_stats"] = "true"
        data = self.get(path, params=params)
        return Page(
            items=data.get("items", []),
            page=data.get("page", params["page"]),
            page_count=data.get("page_count", 1),
            page_size=data.get("page_size", params["page_size"]),
            filtered_count=data.get("filtered_count", 0),
            total_count=data.get("total_count", 0),
        )

    # --- broker -------------------------------------------------------------

    def overview(self) -> JSON:
        return cast(JSON, self.get("overview"))

    def nodes(self) -> list[JSON]:
        return cast(list[JSON], self.get("nodes"))

    def whoami(self) -> JSON:
        return cast(JSON, self.get("whoami"))

    # --- vhosts -------------------------------------------------------------

    def vhosts(self) -> list[JSON]:
        return cast(list[JSON], self.get("vhosts"))

    def vhost(self, vhost: str) -> JSON:
        return cast(JSON, self.get(f"vhosts/{segment(vhost)}"))

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
        return cast(list[JSON], self.get(path, params=params))

    def queue(self, vhost: str, name: str, lengths_age: int | None = None) -> JSON:
        params: dict[str, int] | None = None
        if lengths_age:
            params = {"lengths_age": lengths_age, "lengths_incr": max(1, lengths_age // 12)}
            params.update(msg_rates_age=lengths_age, msg_rates_incr=params["lengths_incr"])
        return cast(JSON, self.get(f"queues/{segment(vhost)}/{segment(name)}", params=params))

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
        return cast(list[JSON], self.get(f"queues/{segment(vhost)}/{segment(name)}/bindings"))

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
        return cast(list[JSON], self.get(f"exchanges/{segment(vhost)}" if vhost else "exchanges"))

    def exchange(self, vhost: str, name: str) -> JSON:
        return cast(JSON, self.get(f"exchanges/{segment(vhost)}/{exchange_segment(name)}"))

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
        return cast(list[JSON], self.get(path))

    def exchange_bindings_in(self, vhost: str, name: str) -> list[JSON]:
        path = f"exchanges/{segment(vhost)}/{exchange_segment(name)}/bindings/destination"
        return cast(list[JSON], self.get(path))

    def bindings(self, vhost: str | None = None) -> list[JSON]:
        return cast(list[JSON], self.get(f"bindings/{segment(vhost)}" if vhost else "bindings"))

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
            return _as_page(self.get(path))
        return self.get_page(path, **paging)

    def connection(self, name: str) -> JSON:
        return cast(JSON, self.get(f"connections/{segment(name)}"))

    def connection_channels(self, name: str) -> list[JSON]:
        return cast(list[JSON], self.get(f"connections/{segment(name)}/channels"))

    def close_connection(self, name: str, reason: str = "Closed from Warren") -> None:
        self.close_connection_because(name, reason)

    def channels_page(self, vhost: str | None = None, **paging: Unpack[Paging]) -> Page:
        if vhost:
            return _as_page(self.get(f"vhosts/{segment(vhost)}/channels"))
        return self.get_page("channels", **paging)

    def channel(self, name: str) -> JSON:
        return cast(JSON, self.get(f"channels/{segment(name)}"))

    def consumers(self, vhost: str | None = None) -> list[JSON]:
        return cast(list[JSON], self.get(f"consumers/{segment(vhost)}" if vhost else "consumers"))

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
        return cast(list[JSON], self.get(f"traces/{segment(vhost)}"))

    # --- broker console additions -------------------------------------------

    def policies(self, vhost: str) -> list[JSON]:
        return cast(list[JSON], self.get(f"policies/{segment(vhost)}"))

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
        return cast(JSON, self.get("overview", params={"columns": ",".join(columns)}))

    def nodes_columns(self, columns: Sequence[str]) -> list[JSON]:
        return cast(list[JSON], self.get("nodes", params={"columns": ",".join(columns)}))


def _as_page(items: list[JSON] | None) -> Page:
    items = items or []
    return Page(
        items=items,
        page=1,
        page_count=1,
        page_size=len(items),
        filtered_count=len(items),
        total_count=len(items),
    )
