"""An exchange type from a plugin (rabbitmq_random_exchange's x-random) is offered and
created like the built-in ones. Serial: it enables the plugin on the broker for the
test and disables it again."""

import shutil
import subprocess
from collections.abc import Iterator

import pytest
from django.urls import reverse

from tests.polling import wait_until

pytestmark = pytest.mark.serial
PLUGIN = "rabbitmq_random_exchange"


def _plugins(*args: str) -> None:
    command = shutil.which("rabbitmq-plugins")
    assert command, "rabbitmq-plugins is missing: the broker's own tools are needed here"
    subprocess.run([command, *args, PLUGIN], check=True, capture_output=True, timeout=60)


@pytest.fixture
def random_exchange_type(mgmt) -> Iterator[str]:
    _plugins("enable")
    try:
        wait_until(
            lambda: [t["name"] for t in mgmt.overview()["exchange_types"]],
            check=lambda names: "x-random" in names,
            timeout=30,
            what="x-random among the broker's exchange types",
        )
        yield "x-random"
    finally:
        _plugins("disable")


def test_it_offers_and_creates_a_plugin_exchange_type(
    random_exchange_type, operator_client, mgmt, scratch_vhost
):
    # The type's fixture comes first: the vhost with the exchange goes before the plugin.
    page = operator_client.get(reverse("exchange_new")).content.decode()
    assert f'<option value="{random_exchange_type}">' in page
    response = operator_client.post(
        reverse("exchange_new"),
        {"vhost": scratch_vhost, "name": "spread", "type": random_exchange_type, "durable": "on"},
    )
    assert response.status_code == 302
    assert mgmt.exchange(scratch_vhost, "spread")["type"] == random_exchange_type
