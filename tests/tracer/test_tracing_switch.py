"""Tracing switched from the Vhosts page: operators only, CSRF, audited, stored for the
tap, and the broker's firehose off on every node when a vhost is switched off."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from console.models import AuditEntry
from tests.polling import wait_until
from tracer.store import traced

pytestmark = pytest.mark.django_db


def _switch(client, vhost, to):
    return client.post(reverse("tracing_switch", args=[vhost]), {"trace": to, "next": "/vhosts/"})


def _row(html, vhost):
    return html.split(f'data-vhost-tracing="{vhost}"', 1)[1].split("</td>", 1)[0]


def _listed_page(client, vhost):
    """The Vhosts page once it lists `vhost` (a broker busy with a parallel run may
    answer with its banner for a moment)."""
    return wait_until(
        lambda: client.get(reverse("vhosts")).content.decode(),
        check=lambda html: f'data-vhost-tracing="{vhost}"' in html,
        timeout=20,
        what=f"the Vhosts page to list {vhost}",
    )


def test_it_traces_a_vhost_an_operator_switches_on(operator_client, scratch_vhost, settings):
    settings.WARREN_TRACE_VHOSTS = ["/"]
    before = _row(_listed_page(operator_client, scratch_vhost), scratch_vhost)
    assert 'data-traced="no"' in before and ">Trace</button>" in before
    response = _switch(operator_client, scratch_vhost, "on")
    assert response.status_code == 302 and response["Location"] == "/vhosts/"
    assert traced.wanted_vhosts(["/"]) == {"/", scratch_vhost}
    page = operator_client.get(reverse("vhosts")).content.decode()
    assert f"Warren traces vhost “{scratch_vhost}”" in page  # the message
    if f'data-vhost-tracing="{scratch_vhost}"' not in page:
        page = _listed_page(operator_client, scratch_vhost)
    row = _row(page, scratch_vhost)
    assert 'data-traced="yes"' in row and ">Stop tracing</button>" in row
    entry = AuditEntry.objects.get(action="trace_on", vhost=scratch_vhost)
    assert entry.result == AuditEntry.OK and entry.username == "otto-operator"


def test_it_switches_the_firehose_off_on_every_node(operator_client, mgmt, scratch_vhost):
    traced.choose(scratch_vhost, True, [])
    mgmt.set_tracing(scratch_vhost, True)
    assert mgmt.vhost(scratch_vhost)["tracing"] is True
    response = _switch(operator_client, scratch_vhost, "off")
    assert response.status_code == 302
    assert scratch_vhost not in traced.wanted_vhosts([])
    assert mgmt.vhost(scratch_vhost)["tracing"] is False
    row = _row(_listed_page(operator_client, scratch_vhost), scratch_vhost)
    assert re.search(r'data-node-tracing="[^"]+">off</span>', row)
    entry = AuditEntry.objects.get(action="trace_off", vhost=scratch_vhost)
    assert "switched off" in entry.detail and "firehose is off" in entry.detail


def test_it_refuses_a_viewer_and_stores_nothing(viewer_client, scratch_vhost):
    traced.wanted_vhosts(["/"])
    response = _switch(viewer_client, scratch_vhost, "on")
    assert response.status_code == 403
    assert traced.wanted_vhosts(["/"]) == {"/"}
    assert AuditEntry.objects.filter(result=AuditEntry.DENIED, action="tracing_switch").exists()
    page = viewer_client.get(reverse("vhosts")).content.decode()
    assert "tracing-switch" not in page


def test_it_needs_the_csrf_token(operator, scratch_vhost):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    response = _switch(client, scratch_vhost, "on")
    assert response.status_code == 403
    assert scratch_vhost not in traced.wanted_vhosts(["/"])


def test_it_stores_nothing_for_a_vhost_the_broker_lacks(operator_client):
    response = _switch(operator_client, "no-such-vhost-warren", "on")
    assert response.status_code == 302
    assert "no-such-vhost-warren" not in traced.wanted_vhosts(["/"])
    entry = AuditEntry.objects.get(action="trace_on")
    assert entry.result == AuditEntry.FAILED and entry.detail == "no such vhost"


def test_it_traces_every_vhost_and_hides_the_single_switches(operator_client, scratch_vhost):
    _switch(operator_client, "*", "on")
    assert "*" in traced.wanted_vhosts(["/"])
    page = _listed_page(operator_client, scratch_vhost)
    assert "Warren traces <strong>every vhost</strong>" in page
    assert 'data-traced="yes"' in _row(page, scratch_vhost)
    assert "tracing-switch" not in page
    assert ">Stop tracing every vhost</button>" in page
