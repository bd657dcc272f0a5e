"""Which brokers Warren knows, and the one a request is looking at.

The broker from the environment is always there as "default"; more are stored
as console.models.Broker. Credentials stay in BrokerConfig and never reach a
template: pages get `name`, `slug` and the URLs without passwords.
"""

from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from django.conf import settings

from console.management_api import ManagementClient

DEFAULT_SLUG = "default"
SESSION_KEY = "warren_broker"


@dataclass(frozen=True)
class BrokerConfig:
    slug: str
    name: str
    management_url: str
    amqp_url_public: str
    username: str
    password: str = field(repr=False)

    def client(self, timeout=None):
        return ManagementClient(
            self.management_url,
            self.username,
            self.password,
            timeout=timeout or settings.WARREN_MANAGEMENT_TIMEOUT,
        )

    def amqp_url(self):
        """The AMQP URL with credentials, for pika only."""
        parts = urlsplit(self.amqp_url_public)
        host = parts.hostname or "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{quote(self.username, safe='')}:{quote(self.password, safe='')}@{host}"
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def strip_password(url):
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def default_broker():
    return BrokerConfig(
        slug=DEFAULT_SLUG,
        name="default",
        management_url=settings.WARREN_MANAGEMENT_URL,
        amqp_url_public=strip_password(settings.WARREN_AMQP_URL),
        username=settings.WARREN_MANAGEMENT_USER,
        password=settings.WARREN_MANAGEMENT_PASSWORD,
    )


def _from_model(broker):
    return BrokerConfig(
        slug=broker.slug,
        name=broker.name,
        management_url=broker.management_url,
        amqp_url_public=strip_password(broker.amqp_url),
        username=broker.username,
        password=broker.password,
    )


def all_brokers():
    from console.models import Broker

    return [default_broker()] + [_from_model(b) for b in Broker.objects.all()]


def get_broker(slug):
    """The broker with this slug, or None."""
    if not slug or slug == DEFAULT_SLUG:
        return default_broker()
    from console.models import Broker

    broker = Broker.objects.filter(slug=slug).first()
    return _from_model(broker) if broker else None


def current_broker(request):
    """The broker chosen in this session (?broker= switches), else the default."""
    asked = request.GET.get("broker")
    if asked:
        broker = get_broker(asked)
        if broker is not None:
            request.session[SESSION_KEY] = broker.slug
            return broker
    return get_broker(request.session.get(SESSION_KEY)) or default_broker()


def client(request):
    return current_broker(request).client()


def default_amqp_url():
    """The environment's AMQP URL with its credentials, for the tap and workloads."""
    return settings.WARREN_AMQP_URL


def vhost_from_amqp_url(url):
    path = urlsplit(url).path
    return unquote(path[1:]) if len(path) > 1 else "/"
