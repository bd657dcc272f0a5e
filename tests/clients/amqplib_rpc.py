"""The RabbitMQ tutorial's RPC client and server in Node with amqplib (as pinned in
package.json), run as subprocesses; the client prints each call's stopwatch."""

import json
import shutil
import subprocess
from pathlib import Path

from tests.clients.calls import APART_S, ClientCall, vhost_url

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def node() -> str | None:
    """The node binary, when Node and the pinned amqplib are installed (make node)."""
    found = shutil.which("node")
    return found if found and (ROOT / "node_modules" / "amqplib").is_dir() else None


def run(base_url: str, vhost: str, calls: int) -> list[ClientCall]:
    url = vhost_url(base_url, vhost)
    binary = node()
    assert binary, "node and node_modules/amqplib are needed: make node"
    server = subprocess.Popen(
        [binary, str(HERE / "rpc_server.js"), url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if line.strip() != "ready":
            server.wait(10)
            raise AssertionError(f"the amqplib server did not start: {server.stderr.read()}")
        client = subprocess.run(
            [binary, str(HERE / "rpc_client.js"), url, str(calls), str(round(APART_S * 1000))],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert client.returncode == 0, client.stderr
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
    done = []
    for line in client.stdout.splitlines():
        call = json.loads(line)
        done.append(ClientCall(call["correlation_id"], "rpc_queue", float(call["client_ms"])))
    return done
