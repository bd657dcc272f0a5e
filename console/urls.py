from django.urls import include, path

from console import url_segments  # noqa: F401 - registers the <name:> and <exchange:> converters
from console.views import (
    actions,
    audit_log,
    auth,
    brokers,
    charts,
    connections,
    errors,
    exchanges,
    nodes,
    overview,
    queues,
    streams,
    topology,
)
from console.views import vhosts as vhost_views

urlpatterns = [
    path("login/", auth.login, name="login"),
    path("logout/", auth.logout, name="logout"),
    path("", overview.overview, name="overview"),
    path("overview/charts.json", charts.overview_charts, name="overview_charts"),
    path("nodes/", nodes.node_list, name="nodes"),
    path("nodes/<name:name>/", nodes.node_page, name="node"),
    # --- broker console ---
    path("queues/", queues.queue_list, name="queues"),
    path("queues/<name:vhost>/<name:name>/", queues.queue_detail, name="queue"),
    path("queues/<name:vhost>/<name:name>/charts.json", charts.queue_charts, name="queue_charts"),
    path("queues/<name:vhost>/<name:name>/stream", streams.stream_browse, name="queue_stream"),
    path("queues/<name:vhost>/<name:name>/peek", queues.queue_peek, name="queue_peek"),
    path("queues/<name:vhost>/<name:name>/purge", actions.queue_purge, name="queue_purge"),
    path("queues/<name:vhost>/<name:name>/delete", actions.queue_delete, name="queue_delete"),
    path("queues/<name:vhost>/<name:name>/move", actions.queue_move, name="queue_move"),
    path("exchanges/", exchanges.exchange_list, name="exchanges"),
    path("exchanges/<name:vhost>/<exchange:name>/", exchanges.exchange_detail, name="exchange"),
    path(
        "exchanges/<name:vhost>/<exchange:name>/charts.json",
        charts.exchange_charts,
        name="exchange_charts",
    ),
    path(
        "exchanges/<name:vhost>/<exchange:name>/publish",
        actions.exchange_publish,
        name="exchange_publish",
    ),
    path(
        "exchanges/<name:vhost>/<exchange:name>/delete",
        actions.exchange_delete,
        name="exchange_delete",
    ),
    path("bindings/<name:vhost>/add", actions.binding_add, name="binding_add"),
    path("bindings/<name:vhost>/remove", actions.binding_remove, name="binding_remove"),
    path("topology/", topology.topology_page, name="topology"),
    path("topology/data.json", topology.topology_data, name="topology_data"),
    path("connections/", connections.connection_list, name="connections"),
    path("connections/<name:name>/", connections.connection_detail, name="connection"),
    path("connections/<name:name>/close", actions.connection_close, name="connection_close"),
    path("channels/", connections.channel_list, name="channels"),
    path("vhosts/", vhost_views.vhost_list, name="vhosts"),
    path("brokers/", brokers.broker_list, name="brokers"),
    path("brokers/add", brokers.broker_add, name="broker_add"),
    path("brokers/<slug:slug>/edit", brokers.broker_edit, name="broker_edit"),
    path("brokers/<slug:slug>/delete", brokers.broker_delete, name="broker_delete"),
    path("audit/", audit_log.audit_log, name="audit_log"),
    path("", include("console.admin_urls")),
    path("", include("tracer.urls")),
    path("", include("replay.urls")),
]

# Warren's own error pages (templates/403.html, 404.html, 500.html).
handler403 = errors.permission_denied
handler404 = errors.page_not_found
handler500 = errors.server_error
