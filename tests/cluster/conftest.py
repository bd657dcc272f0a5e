import shutil
import tempfile
from pathlib import Path

import pytest

from tests.cluster.nodes import RABBIT_BIN, LocalCluster


@pytest.fixture(scope="module")
def rabbit_cluster():
    """Two fresh RabbitMQ nodes clustered on loopback; both stopped afterwards, whatever happens."""
    if not (RABBIT_BIN / "rabbitmq-server").exists():
        pytest.fail(f"{RABBIT_BIN}/rabbitmq-server is missing: the rabbitmq-server package is.")
    base = Path(tempfile.mkdtemp(prefix="warren-cluster-"))
    cluster = LocalCluster(base)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
