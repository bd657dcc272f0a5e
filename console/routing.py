"""WebSocket routes of the project: each app's routes, wired together here."""

from tracer import routing as tracer_routing

websocket_urlpatterns = [*tracer_routing.websocket_urlpatterns]
