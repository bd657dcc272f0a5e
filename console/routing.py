"""WebSocket routes. Each app adds its consumers here."""

from django.urls import path

from tracer.consumers import FlowsConsumer, MessagesConsumer

websocket_urlpatterns = [
    path("ws/flows/", FlowsConsumer.as_asgi(), name="ws_flows"),
    path("ws/messages/", MessagesConsumer.as_asgi(), name="ws_messages"),
]
