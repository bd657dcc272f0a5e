"""The Overview page against the real broker, and with the broker gone or refusing us."""

from django.urls import reverse

from rabbit.management import ManagementClient
from rabbit.management_http import BrokerAuthFailed, BrokerUnavailable


def test_it_shows_the_live_broker_figures(viewer_client, mgmt):
    overview = mgmt.overview()
    response = viewer_client.get(reverse("overview"))
    assert response.status_code == 200
    page = response.content.decode()
    assert overview["rabbitmq_version"] in page
    assert overview["erlang_version"] in page
    for node in mgmt.nodes():
        assert node["name"] in page
    assert "Publish" in page and "Deliver" in page and "Ack" in page


def test_it_serves_the_htmx_refresh_as_the_stats_partial(viewer_client):
    response = viewer_client.get(reverse("overview"), HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert response.status_code == 200
    assert page.lstrip().startswith('<div id="overview-stats"')
    assert "<html" not in page


def test_it_shows_a_banner_when_the_credentials_are_wrong(viewer_client, settings):
    settings.WARREN_MANAGEMENT_PASSWORD = "certainly-wrong"
    response = viewer_client.get(reverse("overview"))
    assert response.status_code == 200
    assert "The broker refused Warren&#x27;s credentials" in response.content.decode()
    assert "certainly-wrong" not in response.content.decode()


def test_it_shows_a_banner_when_the_broker_is_down(viewer_client, settings):
    settings.WARREN_MANAGEMENT_URL = "http://127.0.0.1:9/"
    response = viewer_client.get(reverse("overview"))
    assert response.status_code == 200
    assert "The broker cannot be reached" in response.content.decode()
    refresh = viewer_client.get(reverse("overview"), HTTP_HX_REQUEST="true")
    assert "The broker cannot be reached" in refresh.content.decode()


def test_it_tells_unavailable_from_auth_failed():
    import pytest

    with pytest.raises(BrokerUnavailable):
        ManagementClient("http://127.0.0.1:9/", "guest", "guest", timeout=1).overview()
    with pytest.raises(BrokerAuthFailed) as caught:
        ManagementClient("http://127.0.0.1:15672/", "guest", "nope", timeout=3).overview()
    assert "guest" in caught.value.message


def test_it_round_trips_hostile_vhost_names(mgmt):
    name = "warren-test/<script>alert(1)</script> 100% ünï"
    mgmt.create_vhost(name, description="hostile")
    try:
        assert mgmt.vhost(name)["name"] == name
        mgmt.set_tracing(name, True)
        vhost = mgmt.vhost(name)
        assert vhost["tracing"] is True
        assert vhost["description"] == "hostile"
    finally:
        mgmt.delete_vhost(name)
