"""The one module that speaks to RabbitMQ's management HTTP API.

Every call has a timeout, and every failure becomes one of the BrokerError
kinds below carrying the broker's own words, so pages can show a banner
instead of failing.
"""

import threading
from dataclasses import dataclass
from urllib.parse import quote

import httpx

DEFAULT_EXCHANGE_PATH_NAME = "amq.default"
MAX_PAGE_SIZE = 500


class BrokerError(Exception):
    """Anything that kept the management API from answering as asked."""

    banner = "The broker's management API gave an error"

    def __init__(self, message, status=None):
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


def segment(name):
    """One path segment: vhost '/' becomes %2F, '<x y>' is escaped, nothing passes raw."""
    return quote(name, safe="")


def exchange_segment(name):
    return segment(name or DEFAULT_EXCHANGE_PATH_NAME)


@dataclass(frozen=True)
class Page:
    items: list
    page: int
    page_count: int
    page_size: int
    filtered_count: int
    total_count: int


_clients = {}
_clients_lock = threading.Lock()


def _http_client(base_url, username, password, timeout):
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


def _broker_reason(response):
    try:
        data = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(data, dict):
        return str(data.get("reason") or data.get("error") or data)
    return str(data)[:300]


class ManagementClient:
    def __init__(self, base_url, username, password, timeout=5.0):
        self.base_url = base_url
        self.username = username
        self._http = _http_client(base_url, username, password, timeout)
        self._credentials = (username, password, timeout)  # for for_url()

    # --- transport --------------------------------------------------------

    def request(self, method, path, params=None, json=None, headers=None):
        response = self._send(method, path, params=params, json=json, headers=headers)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise BrokerUnavailable(
                "The management API answered with something that is not JSON."
            ) from None

    def _send(self, method, path, params=None, json=None, headers=None):
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

    def get(self, path, params=None):
        return self.request("GET", path, params=params)

    def put(self, path, json=None):
        return self.request("PUT", path, json=json if json is not None else {})

    def post(self, path, json=None):
        return self.request("POST", path, json=json if json is not None else {})

    def delete(self, path, params=None):
        return self.request("DELETE", path, params=params)

    def get_page(
        self,
        path,
        page=1,
        page_size=100,
        name="",
        use_regex=False,
        sort="",
        sort_reverse=False,
        columns=None,
        disable_stats=False,
    ):
        """A page of a list call, filtered and sorted by the broker itself."""
        params = {"page": max(1, page), "page_size": min(max(1, page_size), MAX_PAGE_SIZE)}
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

    def overview(self):
        return self.get("overview")

    def nodes(self):
        return self.get("nodes")

    def whoami(self):
        return self.get("whoami")

    # --- vhosts -------------------------------------------------------------

    def vhosts(self):
        return self.get("vhosts")

    def vhost(self, vhost):
        return self.get(f"vhosts/{segment(vhost)}")

    def create_vhost(self, vhost, description="", tags=""):
        self.put(f"vhosts/{segment(vhost)}", {"description": description, "tags": tags})
        self.put(
            f"permissions/{segment(vhost)}/{segment(self.username)}",
            {"configure": ".*", "write": ".*", "read": ".*"},
        )

    def delete_vhost(self, vhost):
        self.delete(f"vhosts/{segment(vhost)}")

    def set_tracing(self, vhost, enabled):
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

    def queues_page(self, vhost=None, **paging):
        path = f"queues/{segment(vhost)}" if vhost else "queues"
        return self.get_page(path, **paging)

    def queues(self, vhost=None, columns=None):
        path = f"queues/{segment(vhost)}" if vhost else "queues"
        params = {"columns": ",".join(columns)} if columns else None
        return self.get(path, params=params)

    def queue(self, vhost, name, lengths_age=None):
        params = None
        if lengths_age:
            params = {"lengths_age": lengths_age, "lengths_incr": max(1, lengths_age // 12)}
            params.update(msg_rates_age=lengths_age, msg_rates_incr=params["lengths_incr"])
        return self.get(f"queues/{segment(vhost)}/{segment(name)}", params=params)

    def declare_queue(self, vhost, name, durable=True, auto_delete=False, arguments=None):
        self.put(
            f"queues/{segment(vhost)}/{segment(name)}",
            {"durable": durable, "auto_delete": auto_delete, "arguments": arguments or {}},
        )

    def delete_queue(self, vhost, name):
        self.delete(f"queues/{segment(vhost)}/{segment(name)}")

    def queue_bindings(self, vhost, name):
        return self.get(f"queues/{segment(vhost)}/{segment(name)}/bindings")

    def peek(self, vhost, name, count=10, truncate=50000, encoding="auto"):
        """The first messages of a queue, requeued (which marks them redelivered)."""
        return self._get_messages(vhost, name, count, "ack_requeue_true", encoding, truncate)

    def take(self, vhost, name, count=1, truncate=50000):
        """The first messages of a queue, removed from it; payloads in base64."""
        return self._get_messages(vhost, name, count, "ack_requeue_false", "base64", truncate)

    def _get_messages(self, vhost, name, count, ackmode, encoding, truncate):
        return self.post(
            f"queues/{segment(vhost)}/{segment(name)}/get",
            {"count": count, "ackmode": ackmode, "encoding": encoding, "truncate": truncate},
        )

    # --- exchanges and bindings ---------------------------------------------

    def exchanges_page(self, vhost=None, **paging):
        path = f"exchanges/{segment(vhost)}" if vhost else "exchanges"
        return self.get_page(path, **paging)

    def exchanges(self, vhost=None):
        return self.get(f"exchanges/{segment(vhost)}" if vhost else "exchanges")

    def exchange(self, vhost, name):
        return self.get(f"exchanges/{segment(vhost)}/{exchange_segment(name)}")

    def declare_exchange(self, vhost, name, type_="direct", durable=True, arguments=None):
        self.put(
            f"exchanges/{segment(vhost)}/{segment(name)}",
            {"type": type_, "durable": durable, "arguments": arguments or {}},
        )

    def delete_exchange(self, vhost, name):
        self.delete(f"exchanges/{segment(vhost)}/{segment(name)}")

    def exchange_bindings_out(self, vhost, name):
        return self.get(f"exchanges/{segment(vhost)}/{exchange_segment(name)}/bindings/source")

    def exchange_bindings_in(self, vhost, name):
        return self.get(f"exchanges/{segment(vhost)}/{exchange_segment(name)}/bindings/destination")

    def bindings(self, vhost=None):
        return self.get(f"bindings/{segment(vhost)}" if vhost else "bindings")

    def bind(
        self, vhost, source, destination, destination_type="q", routing_key="", arguments=None
    ):
        """destination_type is 'q' (queue) or 'e' (exchange)."""
        self.post(
            f"bindings/{segment(vhost)}/e/{segment(source)}/{destination_type}/{segment(destination)}",
            {"routing_key": routing_key, "arguments": arguments or {}},
        )

    def unbind(self, vhost, source, destination, destination_type, properties_key):
        self.delete(
            f"bindings/{segment(vhost)}/e/{segment(source)}/{destination_type}/"
            f"{segment(destination)}/{segment(properties_key)}"
        )

    def publish(
        self, vhost, exchange, routing_key, payload, properties=None, payload_encoding="string"
    ):
        """Publish through the API; answers {'routed': bool}."""
        return self.post(
            f"exchanges/{segment(vhost)}/{exchange_segment(exchange)}/publish",
            {
                "properties": properties or {},
                "routing_key": routing_key,
                "payload": payload,
                "payload_encoding": payload_encoding,
            },
        )

    # --- connections, channels, consumers -----------------------------------

    def connections_page(self, vhost=None, **paging):
        path = f"vhosts/{segment(vhost)}/connections" if vhost else "connections"
        if vhost:
            return _as_page(self.get(path))
        return self.get_page(path, **paging)

    def connection(self, name):
        return self.get(f"connections/{segment(name)}")

    def connection_channels(self, name):
        return self.get(f"connections/{segment(name)}/channels")

    def close_connection(self, name, reason="Closed from Warren"):
        self.close_connection_because(name, reason)

    def channels_page(self, vhost=None, **paging):
        if vhost:
            return _as_page(self.get(f"vhosts/{segment(vhost)}/channels"))
        return self.get_page("channels", **paging)

    def channel(self, name):
        return self.get(f"channels/{segment(name)}")

    def consumers(self, vhost=None):
        return self.get(f"consumers/{segment(vhost)}" if vhost else "consumers")

    # --- the rabbitmq_tracing plugin (benchmarks compare against it) --------

    def create_trace(self, vhost, name, pattern="#", format_="json"):
        self.put(
            f"traces/{segment(vhost)}/{segment(name)}",
            {"format": format_, "pattern": pattern},
        )

    def delete_trace(self, vhost, name):
        self.delete(f"traces/{segment(vhost)}/{segment(name)}")

    def traces(self, vhost):
        return self.get(f"traces/{segment(vhost)}")

    # --- broker console additions -------------------------------------------

    def policies(self, vhost):
        return self.get(f"policies/{segment(vhost)}")

    def delete_queue_when(self, vhost, name, if_empty=False, if_unused=False):
        """Delete a queue only while it is empty and/or has no consumers."""
        params = {}
        if if_empty:
            params["if-empty"] = "true"
        if if_unused:
            params["if-unused"] = "true"
        self.delete(f"queues/{segment(vhost)}/{segment(name)}", params=params or None)

    def delete_exchange_when(self, vhost, name, if_unused=False):
        """Delete an exchange, optionally only while nothing is bound from it."""
        params = {"if-unused": "true"} if if_unused else None
        self.delete(f"exchanges/{segment(vhost)}/{segment(name)}", params=params)

    def purge(self, vhost, name):
        """Empty a queue. The broker answers 406 to this call when asked for JSON,
        so it goes out accepting anything."""
        self._send(
            "DELETE", f"queues/{segment(vhost)}/{segment(name)}/contents", headers={"Accept": "*/*"}
        )

    def close_connection_because(self, name, reason):
        """Close a client connection; the client is told `reason` (X-Reason header)."""
        self._send("DELETE", f"connections/{segment(name)}", headers={"X-Reason": reason[:200]})

    # --- clusters (rabbit.cluster) ------------------------------------------

    def for_url(self, base_url):
        """The same credentials and timeout against another URL: another node's listener."""
        return ManagementClient(base_url, *self._credentials)

    def overview_columns(self, columns):
        """Only these keys of /api/overview (node, listeners: cheap on a big cluster)."""
        return self.get("overview", params={"columns": ",".join(columns)})

    def nodes_columns(self, columns):
        return self.get("nodes", params={"columns": ",".join(columns)})


def _as_page(items):
    items = items or []
    return Page(
        items=items,
        page=1,
        page_count=1,
        page_size=len(items),
        filtered_count=len(items),
        total_count=len(items),
    )
