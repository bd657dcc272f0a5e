"""A TCP forwarder in front of the real Redis: tests stop and start it to take
"Redis" away from one process without touching the Redis everyone shares."""

import contextlib
import socket
import threading


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class TcpProxy:
    def __init__(self, target_port, port=None, target_host="127.0.0.1"):
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self._server = None
        self._sockets = set()
        self._lock = threading.Lock()
        self._running = threading.Event()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        server.settimeout(0.2)
        self._server = server
        self._running.set()
        self._acceptor = threading.Thread(target=self._accept, args=(server,), daemon=True)
        self._acceptor.start()
        return self

    def stop(self):
        """Refuse new connections and cut the open ones, as a dead Redis would."""
        self._running.clear()
        if self._server is not None:
            # A blocked accept() keeps the port listening until it returns.
            self._acceptor.join(timeout=2)
            self._server.close()
            self._server = None
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, server):
        while self._running.is_set():
            try:
                client, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)  # Redis may stay quiet for long (a blocking pop)
            with self._lock:
                self._sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
