"""WebSocket routes. Each app adds its consumers here."""

websocket_urlpatterns = []
