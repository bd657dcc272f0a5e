"""A broker as Warren reaches it, and the default one from the environment.

The broker from the environment is always there as "default"; the console
stores more (console/brokers.py). Credentials stay in BrokerConfig and never
reach a template: pages get `name`, `slug` and the URLs without passwords.
"""

from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from django.conf import settings

from rabbit.management import ManagementClient

DEFAULT_SLUG = "default"


@dataclass(frozen=True)
class BrokerConfig:
    slug: str
    name: str
    management_url: str
    amqp_url_public: str
    username: str
    password: str = field(repr=False)

    def client(self, timeout: float | None = None) -> ManagementClient:
        return ManagementClient(
            self.management_url,
            self.username,
            self.password,
            timeout=timeout or settings.WARREN_MANAGEMENT_TIMEOUT,
        )

    def amqp_url(self) -> str:
        """The AMQP URL with credentials, for pika only."""
        parts = urlsplit(self.amqp_url_public)
        host = parts.hostname or "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{quote(self.username, safe='')}:{quote(self.password, safe='')}@{host}"
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def strip_password(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def default_broker() -> BrokerConfig:
    return BrokerConfig(
        slug=DEFAULT_SLUG,
        name="default",
        management_url=settings.WARREN_MANAGEMENT_URL,
        amqp_url_public=strip_password(settings.WARREN_AMQP_URL),
        username=settings.WARREN_MANAGEMENT_USER,
        password=settings.WARREN_MANAGEMENT_PASSWORD,
    )


def default_amqp_url() -> str:
    """The environment's AMQP URL with its credentials, for the tap and workloads."""
    url: str = settings.WARREN_AMQP_URL
    return url


def vhost_from_amqp_url(url: str) -> str:
    path = urlsplit(url).path
    return unquote(path[1:]) if len(path) > 1 else "/"
