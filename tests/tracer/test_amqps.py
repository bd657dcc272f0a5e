"""amqps:// end to end: through a TLS listener the test starts in front of the broker.

The listener speaks only TLS (with a certificate from a CA made here) and
forwards the decrypted stream to the broker's plain port: a client that sent
its login in clear would never get an AMQP session through it. The tap's own
reader, pika and the whole tap are each taken through it, and a broker whose
certificate cannot be verified is refused.
"""

import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
import time
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rabbit import amqp
from rabbit.raw import AMQPRawError, TraceConsumer
from tests.polling import wait_until
from tests.tracer.tapping import TapProcess, client
from tracer.models import Message


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject, issuer, public_key, signing_key, *, ca):
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(signing_key, hashes.SHA256())


def _pem(certificate):
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate(_name("Warren test CA"), _name("Warren test CA"), ca_key.public_key(),
                      ca_key, ca=True)  # fmt: skip
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate(_name("127.0.0.1"), ca.subject, server_key.public_key(), ca_key, ca=False)
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = _certificate(_name("Another CA"), _name("Another CA"), other_key.public_key(),
                         other_key, ca=True)  # fmt: skip
    files = SimpleNamespace(
        ca=folder / "ca.pem", cert=folder / "server.pem", key=folder / "server.key",
        other_ca=folder / "other-ca.pem",
    )  # fmt: skip
    files.ca.write_bytes(_pem(ca))
    files.cert.write_bytes(_pem(server))
    files.key.write_bytes(_key_pem(server_key))
    files.other_ca.write_bytes(_pem(other))
    return files


class TlsListener(threading.Thread):
    """TLS on 127.0.0.1 (a free port), each connection forwarded to the broker's 5672."""

    def __init__(self, certificates):
        super().__init__(daemon=True)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certificates.cert, certificates.key)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sessions = 0
        self.refused = 0

    def run(self):
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw):
        try:
            tls = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            self.refused += 1
            raw.close()
            return
        self.sessions += 1
        upstream = socket.create_connection(("127.0.0.1", 5672))
        threading.Thread(target=_pump, args=(tls, upstream), daemon=True).start()
        _pump(upstream, tls)

    def url(self, vhost=""):
        return f"amqps://guest:guest@127.0.0.1:{self.port}/{vhost}"

    def close(self):
        self.listener.close()


def _pump(source, target):
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def listener(certificates):
    started = TlsListener(certificates)
    started.start()
    yield started
    started.close()


def _fill(vhost, queue, bodies):
    connection = client(vhost)
    channel = connection.channel()
    channel.queue_declare(queue)
    for body in bodies:
        channel.basic_publish("", queue, body)
    connection.close()


def test_the_tap_reader_consumes_over_tls_and_keeps_its_arrival_stamps(
    listener, certificates, scratch_vhost, settings
):
    settings.WARREN_AMQP_CA_FILE = str(certificates.ca)
    _fill(scratch_vhost, "q", [])
    reader = TraceConsumer(listener.url(), vhost=scratch_vhost, name="warren-test-tls").connect()
    try:
        reader.consume("q", 10)
        before_us = time.time_ns() // 1000
        _fill(scratch_vhost, "q", [b"one", b"two", b"three"])
        got = []
        deadline = time.monotonic() + 10
        while len(got) < 3 and time.monotonic() < deadline:
            got += reader.poll(0.2)
        assert [delivery.body for delivery in got] == [b"one", b"two", b"three"]
        assert reader.kernel_stamps
        assert before_us <= reader.received_us <= time.time_ns() // 1000
        reader.ack(got[-1].tag)
    finally:
        reader.close()
    assert listener.sessions == 1


def test_it_refuses_a_broker_whose_certificate_it_cannot_verify(
    listener, certificates, scratch_vhost, settings
):
    settings.WARREN_AMQP_CA_FILE = str(certificates.other_ca)
    with pytest.raises(AMQPRawError, match="CERTIFICATE_VERIFY_FAILED.*unable to get local issuer"):
        TraceConsumer(listener.url(), vhost=scratch_vhost).connect()
    with pytest.raises(amqp.AMQPConnectionError):
        amqp.blocking_connection(listener.url(), vhost=scratch_vhost)
    assert listener.sessions == 0


def test_pika_publishes_over_tls_with_the_same_settings(
    listener, certificates, scratch_vhost, settings, mgmt
):
    settings.WARREN_AMQP_CA_FILE = str(certificates.ca)
    connection = amqp.blocking_connection(listener.url(), vhost=scratch_vhost)
    channel = connection.channel()
    channel.queue_declare("over-tls")
    channel.confirm_delivery()
    channel.basic_publish("", "over-tls", b"sealed", mandatory=True)
    connection.close()
    wait_until(
        lambda: mgmt.queue(scratch_vhost, "over-tls").get("messages") == 1,
        timeout=10.0,
        what="the message published over TLS",
    )
    assert listener.sessions == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_tap_traces_over_tls(listener, certificates, scratch_vhost):
    env = {"WARREN_AMQP_URL": listener.url(), "WARREN_AMQP_CA_FILE": str(certificates.ca)}
    with TapProcess(scratch_vhost, env=env):
        _fill(scratch_vhost, "traced", [b"a", b"b"])
        wait_until(
            lambda: Message.objects.filter(vhost=scratch_vhost, event="publish").count() == 2,
            timeout=15.0,
            what="both publishes stored through the TLS listener",
        )
    assert listener.sessions >= 2  # the tap's pika connection and its reader's
