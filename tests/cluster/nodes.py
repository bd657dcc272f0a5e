"""A real two-node RabbitMQ cluster on loopback, for the cluster tests.

Debian's RabbitMQ 3.10 is started twice more, as this OS user, beside the
broker everyone else uses (which is never touched): each node with its own
name, ports, data and log directories under one temporary directory, and an
Erlang cookie of its own there (HOME points at it, for the nodes and for
rabbitmqctl alike; the packaged /usr/sbin wrappers would switch to the
rabbitmq user and its cookie, so the scripts under /usr/lib/rabbitmq/bin are
run instead). The second node finds the first through classic peer discovery
on its first boot, which saves a stop_app/join_cluster/start_app round.

Each node runs in the foreground as a child of the test process
(RUNNING_UNDER_SYSTEMD makes the script exec the Erlang VM, so the child *is*
the node): SIGTERM stops it cleanly, SIGKILL is the last resort, and nothing
outlives the tests.
"""

import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

from rabbit.management import ManagementClient
from rabbit.management_http import BrokerError
from tests.polling import wait_until

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalNode:
    def __init__(self, base, letter, run_id, peers=()):
        self.name = f"warren-{letter}-{run_id}@localhost"
        self.dir = base / letter
        self.home = base
        self.amqp_port, self.http_port, self.dist_port = free_port(), free_port(), free_port()
        self.process = None
        self.dir.mkdir()
        config = [
            f"listeners.tcp.1 = 127.0.0.1:{self.amqp_port}",
            f"management.tcp.port = {self.http_port}",
            "management.tcp.ip = 127.0.0.1",
            "log.console = false",
            "log.file.level = warning",
        ]
        if peers:
            config.append("cluster_formation.peer_discovery_backend = classic_config")
            config += [
                f"cluster_formation.classic_config.nodes.{i} = {peer}"
                for i, peer in enumerate(peers, 1)
            ]
        (self.dir / "rabbitmq.conf").write_text("\n".join(config) + "\n")
        (self.dir / "enabled_plugins").write_text("[rabbitmq_management].\n")
        (self.dir / "env.conf").write_text("")  # not the packaged one, which names rabbit@localhost

    @property
    def management_url(self):
        return f"http://127.0.0.1:{self.http_port}/"

    @property
    def amqp_url(self):
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/%2F"

    def client(self, timeout=3.0):
        return ManagementClient(self.management_url, "guest", "guest", timeout=timeout)

    def env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update(
            HOME=str(self.home),
            RABBITMQ_CONF_ENV_FILE=str(self.dir / "env.conf"),
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_CONFIG_FILE=str(self.dir / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self.dir / "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.dir / "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=str(self.dir / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.dir / "log"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
            RUNNING_UNDER_SYSTEMD="1",
        )
        return env

    def start(self):
        with open(self.dir / "stdout.log", "ab") as out:
            self.process = subprocess.Popen(
                [str(RABBIT_BIN / "rabbitmq-server")],
                cwd=self.dir,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def answers(self):
        try:
            return self.client(timeout=1.0).overview_columns(["node"]).get("node") == self.name
        except BrokerError:
            return False

    def wait_up(self, deadline):
        def up():
            if self.process.poll() is not None:
                raise RuntimeError(f"node {self.name} exited:\n{self.log_tail()}")
            return self.answers()

        try:
            wait_until(up, deadline - time.monotonic(), 0.25, f"node {self.name} to start")
        except AssertionError as error:
            raise RuntimeError(f"{error}:\n{self.log_tail()}") from None

    def stop(self):
        """SIGTERM (a clean stop), then SIGKILL of this node's own process group."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def restart(self):
        """A full restart of the node (stop_app/start_app would keep tracing on)."""
        self.stop()
        self.start()
        self.wait_up(time.monotonic() + START_TIMEOUT_S)

    def ctl(self, *args, timeout=30):
        return subprocess.run(
            [str(RABBIT_BIN / "rabbitmqctl"), "-q", "-n", self.name, *args],
            env=self.env(),
            cwd=self.dir,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def tracing_by_ctl(self, vhost):
        """This node's tracing for vhost as rabbitmqctl tells it (not through the HTTP API)."""
        result = self.ctl("list_vhosts", "name", "tracing")
        assert result.returncode == 0, result.stderr
        for line in result.stdout.splitlines():
            name, _, tracing = line.rpartition("\t")
            if name == vhost:
                return tracing == "true"
        raise AssertionError(f"{vhost!r} not in {result.stdout!r}")

    def log_tail(self):
        logs = sorted((self.dir / "log").glob("*.log")) + [self.dir / "stdout.log"]
        text = "\n".join(p.read_text(errors="replace")[-2000:] for p in logs if p.exists())
        return text[-4000:]


class LocalCluster:
    def __init__(self, base):
        cookie = base / ".erlang.cookie"
        cookie.write_text(uuid.uuid4().hex.upper())
        cookie.chmod(0o400)
        run_id = uuid.uuid4().hex[:6]
        self.a = LocalNode(base, "a", run_id)
        self.b = LocalNode(base, "b", run_id, peers=[self.a.name])
        self.nodes = (self.a, self.b)

    def start(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        self.a.start()
        self.a.wait_up(deadline)
        self.b.start()  # joins a on its first boot
        self.b.wait_up(deadline)
        self.wait_clustered(deadline)

    def running_nodes(self):
        try:
            nodes = self.a.client(timeout=1.0).nodes_columns(["name", "running"])
        except BrokerError:
            return set()
        return {node["name"] for node in nodes if node.get("running")}

    def wait_clustered(self, deadline):
        wait_until(
            self.running_nodes,
            deadline - time.monotonic(),
            0.25,
            "a two-node cluster",
            check=lambda running: running == {self.a.name, self.b.name},
        )

    def stop(self):
        for node in self.nodes:  # SIGTERM to both first: they stop side by side
            if node.process is not None and node.process.poll() is None:
                node.process.send_signal(signal.SIGTERM)
        for node in self.nodes:
            node.stop()
