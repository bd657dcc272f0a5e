"""Template context shared by every page: the navigation, the chosen broker, and
whether this answer is an htmx fragment (`htmx_partial`, the views' own decision)."""

from django.urls import NoReverseMatch, reverse

from console import access
from console.brokers import current_broker
from console.views.common import wants_partial

# Pages appear in the navigation as soon as their URL name exists.
NAVIGATION = [
    ("Overview", "overview"),
    ("Queues", "queues"),
    ("Exchanges", "exchanges"),
    ("Topology", "topology"),
    ("Connections", "connections"),
    ("Live", "live_flows"),
    ("Messages", "messages"),
    ("Flows", "flows"),
    ("Latency", "latency"),
    ("Replays", "replays"),
    ("Brokers", "brokers"),
    ("Audit", "audit_log"),
]


def _links(current_name):
    links = []
    for label, name in NAVIGATION:
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue
        links.append({"label": label, "url": url, "active": name == current_name})
    return links


def navigation(request):
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    match = getattr(request, "resolver_match", None)
    return {
        "nav_links": _links(match.url_name if match else None),
        "nav_broker": current_broker(request),
        "user_role": access.role_of(request.user),
        "user_can_operate": access.can_operate(request.user),
        "htmx_partial": wants_partial(request),
    }
