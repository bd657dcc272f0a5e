"""TLS for `amqps://` URLs: one client context for pika and for the tap's own reader.

The broker's certificate is always verified, against WARREN_AMQP_CA_FILE when
set (else the system's CAs), and so is its host name; a client certificate
(WARREN_AMQP_CERT_FILE and _KEY_FILE) is offered when configured. A login never
goes out in clear: an `amqps://` URL connects with TLS or not at all.

The tap's reader keeps the kernel's arrival stamp of every packet, which an
`ssl.SSLSocket` hides (it has no `recvmsg`). So it reads the raw socket itself
and passes the bytes through an `ssl.SSLObject` over memory buffers
(`TlsSession`): the same TLS, decrypted after the stamp is taken.
"""

import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

from django.conf import settings

TLS_SCHEMES = ("amqps",)
DEFAULT_TLS_PORT = 5671


def uses_tls(url: str) -> bool:
    return urlsplit(url).scheme.lower() in TLS_SCHEMES


def client_context() -> ssl.SSLContext:
    """The verifying client context the settings describe (CA, client certificate)."""
    ca_file: str = getattr(settings, "WARREN_AMQP_CA_FILE", "") or ""
    cert_file: str = getattr(settings, "WARREN_AMQP_CERT_FILE", "") or ""
    key_file: str = getattr(settings, "WARREN_AMQP_KEY_FILE", "") or ""
    context = ssl.create_default_context(cafile=ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file:
        context.load_cert_chain(cert_file, key_file or None)
    return context


class TlsError(ConnectionError):
    """The TLS session could not be set up or broke (with the reason in words)."""


class TlsSession:
    """TLS over a socket the caller reads and writes itself (memory buffers).

    `encrypt` and `decrypt` may be called from two threads (the reader decrypts,
    an acking thread encrypts): an SSLObject is not thread-safe, so both hold
    one lock.
    """

    def __init__(self, context: ssl.SSLContext, server_hostname: str) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(
            self._incoming, self._outgoing, server_hostname=server_hostname
        )
        self._lock = threading.Lock()

    def handshake(self, sock: socket.socket, timeout: float) -> None:
        """Complete the handshake over `sock` (blocking, within `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self._lock:
                    self._tls.do_handshake()
                sock.sendall(self._pending())
                return
            except ssl.SSLWantReadError:
                sock.sendall(self._pending())
            except ssl.SSLError as error:
                detail = getattr(error, "verify_message", "")  # why a certificate was refused
                words = f"{error.reason or error}" + (f" ({detail})" if detail else "")
                raise TlsError(f"TLS with the broker failed: {words}") from error
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TlsError("the broker did not complete the TLS handshake in time")
            sock.settimeout(remaining)
            data = sock.recv(65536)
            if not data:
                raise TlsError("the broker closed the connection during the TLS handshake")
            self._incoming.write(data)

    def _pending(self) -> bytes:
        return self._outgoing.read()

    def encrypt(self, data: bytes) -> bytes:
        """What to send on the socket for `data`."""
        with self._lock:
            self._tls.write(data)
            return self._outgoing.read()

    def decrypt(self, data: bytes) -> tuple[bytes, bytes]:
        """(plain text now readable, bytes the session needs sent back) for what
        came off the socket; a record cut between reads waits for its rest."""
        parts: list[bytes] = []
        with self._lock:
            self._incoming.write(data)
            while True:
                try:
                    chunk = self._tls.read(65536)
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLZeroReturnError as error:
                    raise TlsError("the broker closed the TLS session") from error
                except ssl.SSLError as error:
                    raise TlsError(f"TLS with the broker broke: {error.reason or error}") from error
                if not chunk:
                    break
                parts.append(chunk)
            return b"".join(parts), self._outgoing.read()
