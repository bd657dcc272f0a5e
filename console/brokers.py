"""The brokers the console stores, and the one a request is looking at.

The broker from the environment is always there as "default"
(rabbit/brokers.py); more are stored as console.models.Broker.
"""

from rabbit.brokers import DEFAULT_SLUG, BrokerConfig, default_broker, strip_password

SESSION_KEY = "warren_broker"


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
