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
    ("Channels", "channels"),
    ("Vhosts", "vhosts"),
    ("Nodes", "nodes"),
    ("Live", "live_flows"),
    ("Messages", "messages"),
    ("Flows", "flows"),
    ("Latency", "latency"),
    ("Replays", "replays"),
    ("Brokers", "brokers"),
    ("Audit", "audit_log"),
]


# The "Admin" group, shown to admins and superusers only.
ADMIN_NAVIGATION = [
    ("Users", "users"),
    ("Vhost admin", "admin_vhosts"),
    ("Policies", "policies"),
    ("Cluster", "admin_cluster"),
    ("Feature flags", "feature_flags"),
    ("Definitions", "definitions"),
]


def navigation_links(
    current_name: str | None, entries: list[tuple[str, str]] | None = None
) -> list[dict[str, object]]:
    """The main navigation: URL resolution only, no database (the 500 page uses it)."""
    links = []
    for label, name in NAVIGATION if entries is None else entries:
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
        "nav_links": navigation_links(match.url_name if match else None),
        "admin_links": navigation_links(match.url_name if match else None, ADMIN_NAVIGATION)
        if access.can_administer(request.user)
        else [],
        "nav_broker": current_broker(request),
        "user_role": access.role_of(request.user),
        "user_can_operate": access.can_operate(request.user),
        "htmx_partial": wants_partial(request),
    }
