"""The tracer's WebSocket routes: the live pages' streams."""

from django.urls import path

from tracer.live.consumers import FlowsConsumer, MessagesConsumer

websocket_urlpatterns = [
    path("ws/flows/", FlowsConsumer.as_asgi(), name="ws_flows"),
    path("ws/messages/", MessagesConsumer.as_asgi(), name="ws_messages"),
]
