"""RabbitMQ's management HTTP API: the transport, its errors and its paging.

Every call has a timeout, and every failure becomes one of the BrokerError
kinds below carrying the broker's own words, so pages can show a banner
instead of failing. rabbit/management.py names the API's resources on top.
"""

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, TypedDict
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


class ManagementHTTP:
    """Requests to one broker's management API, pooled per broker and credentials."""

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

    def get_list(self, path: str, params: QueryParams | None = None) -> list[JSON]:
        """A list call's objects; BrokerError for an answer of another shape (what
        answers at the address may be a proxy or another service)."""
        answer = self.get(path, params=params)
        if not isinstance(answer, list) or not all(isinstance(item, dict) for item in answer):
            raise BrokerError(f"the management API answered {path} with something else than a list")
        return answer

    def get_object(self, path: str, params: QueryParams | None = None) -> JSON:
        """One object; BrokerError for an answer of another shape."""
        answer = self.get(path, params=params)
        if not isinstance(answer, dict):
            raise BrokerError(
                f"the management API answered {path} with something else than an object"
            )
        return answer

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


def as_page(items: list[JSON] | None) -> Page:
    items = items or []
    return Page(
        items=items,
        page=1,
        page_count=1,
        page_size=len(items),
        filtered_count=len(items),
        total_count=len(items),
    )
