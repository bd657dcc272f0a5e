"""A local HTTP server that answers like a sick RabbitMQ management API.

Modes: "500" and "503" (the broker's JSON error with a reason), "html" (a
proxy's page instead of JSON), "slow" (answers after 2.5 s), "lists" (JSON of
another shape), "memory-unavailable" (a node's memory breakdown not ready). The
`sick_broker` fixture points Warren's default broker at it with a 1 s timeout.
"""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

SLOW_S = 2.5
ANSWERS = {
    "500": (b'{"error":"internal","reason":"boom from the broker"}', 500),
    "503": (b'{"error":"unavailable","reason":"node is booting"}', 503),
    "html": (b"<html>proxy error</html>", 200),
    "slow": (b"{}", 200),
    "lists": (b'[["not", "a", "vhost"]]', 200),  # JSON, but not the shape asked for
    # What a node answers for its memory breakdown for a while after it starts.
    "memory-unavailable": (b'{"memory": "not_available"}', 200),
}


class _SickManagementAPI(BaseHTTPRequestHandler):
    def _answer(self):
        mode = self.server.mode
        if mode == "slow":
            time.sleep(SLOW_S)
        body, status = ANSWERS[mode]
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815 - the http.server API

    def log_message(self, *args):
        pass


@pytest.fixture
def sick_broker(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SickManagementAPI)
    server.daemon_threads = True
    server.mode = "500"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.WARREN_MANAGEMENT_URL = f"http://127.0.0.1:{server.server_port}/"
    settings.WARREN_MANAGEMENT_TIMEOUT = 1.0
    yield server
    server.shutdown()
    server.server_close()
