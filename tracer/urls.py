"""Tracer pages and JSON API routes (API paths as docs/architecture.md writes them)."""

from django.urls import path

from tracer.web import api, exports, health, tracing, views
from tracer.web import live_views as views_live

urlpatterns = [
    path("api/health", health.health, name="api_health"),
    path("api/messages", api.messages, name="api_messages"),
    path("api/messages/<int:message_id>", api.message, name="api_message"),
    path("api/flows", api.flows, name="api_flows"),
    path("api/flows/stats", api.flow_stats, name="api_flow_stats"),
    path("api/flows/<int:flow_id>", api.flow, name="api_flow"),
    path("api/tap/status", api.tap_status, name="api_tap_status"),
    # out and back in: Prometheus, export files, capture-file imports (tracer/web/exports.py)
    path("metrics", exports.metrics, name="metrics"),
    path("api/messages/export", exports.messages_export, name="api_messages_export"),
    path("api/flows/export", exports.flows_export, name="api_flows_export"),
    path("api/imports", exports.imports_create, name="api_imports"),
    path("imports/", exports.imports_page, name="imports"),
    path("imports/upload", exports.imports_upload, name="imports_upload"),
    path("messages/", views.messages, name="messages"),
    path("messages/<int:message_id>/", views.message, name="message"),
    path("messages/<int:message_id>/body", views.message_body, name="message_body"),
    path("flows/", views.flows, name="flows"),
    path("flows/<int:flow_id>/", views.flow, name="flow"),
    # live pages, latency and the sequence view (tracer/web/live_views.py)
    path("live/", views_live.live_flows, name="live_flows"),
    path("live/messages/", views_live.live_messages, name="live_messages"),
    path("latency/", views_live.latency_page, name="latency"),
    path("latency/data.json", views_live.latency_data, name="latency_data"),
    path("conversation/", views_live.conversation_page, name="conversation"),
    # tracing switched from the console (the Vhosts page's switches post here)
    path("tracing/<name:vhost>/switch", tracing.tracing_switch, name="tracing_switch"),
]
