"""A real Prometheus scrapes a live Warren, whose tap traces real RPC calls through
the broker: its histogram_quantile over warren_rpc_latency_seconds agrees with
/api/flows/stats within one bucket, and the same flows reach an OTLP receiver as
spans with their stored times. Prometheus is Debian's package
(scripts/ensure-services.sh --test installs it), started here on free loopback
ports with a temporary configuration and storage, and stopped at the end."""

import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from benchmarks.otlp_receiver import Receiver
from console.models import ApiToken
from rabbit import amqp
from tests.polling import wait_until
from tests.tracer.tapping import TapProcess, client
from tracer.export.metrics import LATENCY_BUCKETS_S
from tracer.models import Flow
from tracer.times import to_us

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.serial,
    pytest.mark.slow,
]

PROMETHEUS = shutil.which("prometheus")
FAST_S, SLOW_S = 0.06, 0.4  # mid-bucket: (0.05, 0.1] and (0.25, 0.5]
FAST_CALLS, SLOW_CALLS = 14, 6


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SleepyServer(threading.Thread):
    """Answers each request after sleeping as long as its body says (seconds)."""

    def __init__(self, vhost: str, queue: str) -> None:
        super().__init__(daemon=True)
        self.vhost, self.queue = vhost, queue
        self.ready = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        connection = client(self.vhost, name="warren-test-sleepy-server")
        channel = connection.channel()
        channel.queue_declare(self.queue)
        channel.basic_qos(prefetch_count=1)

        def on_request(ch, method, props, body):
            time.sleep(float(body))
            ch.basic_publish(
                "", props.reply_to, body, amqp.properties(correlation_id=props.correlation_id)
            )
            ch.basic_ack(method.delivery_tag)

        channel.basic_consume(self.queue, on_request)
        self.ready.set()
        while not self.stopping.is_set():
            connection.process_data_events(time_limit=0.05)
        connection.close()


def call_in_turn(vhost: str, queue: str, sleeps: list[float]) -> None:
    connection = client(vhost)
    channel = connection.channel()
    callback = channel.queue_declare("", exclusive=True).method.queue
    replies: list[bytes] = []
    channel.basic_consume(callback, lambda ch, m, p, body: replies.append(body), auto_ack=True)
    for n, sleep in enumerate(sleeps):
        properties = amqp.properties(correlation_id=f"prom-{n}", reply_to=callback)
        channel.basic_publish("", queue, str(sleep).encode(), properties)
        wait_until(
            lambda n=n: connection.process_data_events(time_limit=0.05) or len(replies) > n,
            timeout=10,
            what=f"reply {n}",
        )
    connection.close()


class Prometheus:
    def __init__(self, target: str, token: str) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="warren-prometheus-"))
        self.port = free_port()
        (self.folder / "token").write_text(token)
        (self.folder / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n"
            "  - job_name: warren\n"
            "    metrics_path: /metrics\n"
            "    authorization:\n"
            f"      credentials_file: {self.folder / 'token'}\n"
            "    static_configs:\n"
            f"      - targets: ['{target}']\n"
        )
        self.log = open(self.folder / "log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={self.folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        try:
            wait_until(
                self.ready, timeout=30, what="Prometheus to be ready", ignoring=(httpx.HTTPError,)
            )
        except BaseException:
            self.stop()
            raise

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited: {(self.folder / 'log').read_text()[-3000:]}")
        return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200

    def query(self, promql: str) -> list[dict]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5).json()
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def value(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def bucket_of(seconds: float) -> tuple[float, float]:
    """The (lower, upper] bounds of the histogram bucket holding a value."""
    lower = 0.0
    for upper in LATENCY_BUCKETS_S:
        if seconds <= upper:
            return lower, upper
        lower = upper
    return lower, float("inf")


@pytest.mark.skipif(
    PROMETHEUS is None, reason="scripts/ensure-services.sh --test installs prometheus"
)
def test_prometheus_reads_latency_quantiles_that_agree_with_the_stats_api(
    live_server, scratch_vhost, viewer
):
    queue = f"svc.prom-{uuid.uuid4().hex[:6]}"
    token = ApiToken.issue(viewer)
    cleanup = contextlib.ExitStack()
    receiver = Receiver().start()
    cleanup.callback(receiver.stop)
    server = SleepyServer(scratch_vhost, queue)
    server.start()
    cleanup.callback(server.join, 5)
    cleanup.callback(server.stopping.set)
    tap = TapProcess(
        scratch_vhost,
        env={"WARREN_RPC_TIMEOUT": "2s", "WARREN_OTLP_ENDPOINT": receiver.endpoint},
    )
    cleanup.callback(tap.stop)
    tap.start(wait=False)
    with cleanup:
        assert server.ready.wait(10)
        tap.wait_connected(timeout=60)  # a busy machine starts a tap slowly
        prometheus = Prometheus(live_server.url.removeprefix("http://"), token)
        cleanup.callback(prometheus.stop)
        sleeps = [FAST_S] * FAST_CALLS + [SLOW_S] * SLOW_CALLS
        call_in_turn(scratch_vhost, queue, sleeps)
        calls = len(sleeps)
        wait_until(
            lambda: Flow.objects.filter(vhost=scratch_vhost, status="complete").count() == calls,
            timeout=20,
            what=f"{calls} complete flows",
        )
        service = Flow.objects.filter(vhost=scratch_vhost).values_list("service", flat=True)[0]
        match = f'vhost="{scratch_vhost}",service="{service}"'
        # Counted by the tap's export loop once settled (twice the 2 s timeout, at least
        # 10 s past it), then scraped every second.
        wait_until(
            lambda: prometheus.value(f"warren_rpc_calls_total{{{match}}}"),
            check=lambda value: value == calls,
            timeout=60,
            interval=1,
            what=f"Prometheus to read warren_rpc_calls_total = {calls}",
        )
        assert prometheus.value(f"warren_rpc_timeouts_total{{{match}}}") == 0
        assert (
            prometheus.value(f'warren_rpc_latency_seconds_count{{{match},kind="service"}}') == calls
        )
        assert prometheus.value('warren_tap_events_total{state="stored"}') >= calls * 4

        stats = httpx.get(
            f"{live_server.url}/api/flows/stats",
            params={"vhost": scratch_vhost, "service": service, "since": "1h"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).json()
        (figures,) = stats["services"]
        assert figures["count"] == calls
        for quantile, key in ((0.5, "p50_ms"), (0.9, "p90_ms")):
            promql = (
                f"histogram_quantile({quantile}, "
                f'warren_rpc_latency_seconds_bucket{{{match},kind="end_to_end"}})'
            )
            answer = prometheus.value(promql)
            expected = figures[key] / 1000.0
            lower, upper = bucket_of(expected)
            name = f"p{int(quantile * 100)}"
            print(f"\n{name}: PromQL {answer:.4f} s, /api/flows/stats {expected:.4f} s")
            assert lower < answer <= upper, (quantile, answer, expected)

        # The same calls as spans, with the stored times.
        wait_until(
            lambda: {s.attributes["warren.flow.id"] for s in receiver.spans},
            check=lambda seen: len(seen) == calls,
            timeout=30,
            interval=0.5,
            what="a span tree for every call at the OTLP receiver",
        )
        flow = Flow.objects.filter(vhost=scratch_vhost).order_by("started_at").first()
        spans = {
            s.name.split(" ")[0]: s
            for s in receiver.spans
            if s.attributes["warren.flow.id"] == flow.id
        }
        assert spans["process"].start_ns == to_us(flow.requested_at) * 1000
        assert spans["process"].end_ns == to_us(flow.reply_delivered_at) * 1000
        assert spans["publish"].end_ns == to_us(flow.request_delivered_at) * 1000
        assert spans["receive"].start_ns == to_us(flow.replied_at) * 1000
        assert (
            spans["process"].attributes["messaging.message.conversation_id"] == flow.correlation_id
        )
    assert tap.process.returncode == 0, tap.last_output
