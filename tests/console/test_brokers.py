"""Brokers: add, edit, switch and remove; passwords never rendered back; audited."""

from django.urls import reverse

from console.models import AuditEntry, Broker

FORM = {
    "name": "Second <cluster>",
    "slug": "",
    "management_url": "http://127.0.0.1:15672/",
    "amqp_url": "amqp://127.0.0.1:5672/%2F",
    "username": "guest",
    "password": "guest-Secret-123",
}


def test_it_adds_a_broker_and_never_shows_its_password(operator_client, operator):
    response = operator_client.post(reverse("broker_add"), FORM)
    assert response.status_code == 302
    broker = Broker.objects.get()
    assert broker.slug == "second-cluster" and broker.password == "guest-Secret-123"
    page = operator_client.get(reverse("brokers")).content.decode()
    assert "Second &lt;cluster&gt;" in page
    assert "guest-Secret-123" not in page
    assert page.count('<span class="pill ok">up</span>') == 1  # the default answers…
    assert "The broker refused Warren&#x27;s credentials" in page  # …the new one refuses them
    edit = operator_client.get(reverse("broker_edit", args=["second-cluster"])).content.decode()
    assert "guest-Secret-123" not in edit
    assert 'type="password"' in edit
    entry = AuditEntry.objects.get(action="add_broker")
    assert (entry.username, entry.result) == (operator.username, "ok")
    assert "guest-Secret-123" not in entry.detail


def test_it_keeps_the_password_when_the_edit_leaves_it_empty(operator_client):
    operator_client.post(reverse("broker_add"), FORM)
    response = operator_client.post(
        reverse("broker_edit", args=["second-cluster"]),
        {**FORM, "name": "Renamed", "slug": "second-cluster", "password": ""},
    )
    assert response.status_code == 302
    broker = Broker.objects.get()
    assert (broker.name, broker.password) == ("Renamed", "guest-Secret-123")
    assert AuditEntry.objects.get(action="edit_broker").detail == "changed: name"


def test_it_refuses_credentials_in_the_url_and_the_default_slug(operator_client):
    response = operator_client.post(
        reverse("broker_add"),
        {**FORM, "amqp_url": "amqp://guest:pw@127.0.0.1/%2F", "slug": "default"},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Leave user and password out of the URL" in page
    assert "&#x27;default&#x27; is the environment&#x27;s broker." in page
    assert "guest-Secret-123" not in page  # not even the one just typed
    assert not Broker.objects.exists()
    assert AuditEntry.objects.get(action="add_broker").result == "failed"


def test_it_switches_brokers_and_shows_an_unreachable_one_clearly(operator_client):
    operator_client.post(
        reverse("broker_add"),
        {**FORM, "name": "Dead", "management_url": "http://127.0.0.1:9/"},
    )
    brokers = operator_client.get(reverse("brokers")).content.decode()
    assert '<span class="pill bad">down</span> The broker cannot be reached' in brokers
    for name in ("queues", "exchanges", "connections", "channels", "vhosts", "topology"):
        response = operator_client.get(reverse(name), {"broker": "dead"})
        assert response.status_code == 200, name
        assert "The broker cannot be reached" in response.content.decode(), name
    assert '<span class="broker-tag" title="Broker">Dead</span>' in response.content.decode()
    operator_client.get(reverse("overview"), {"broker": "default"})
    assert (
        "The broker cannot be reached"
        not in operator_client.get(reverse("queues")).content.decode()
    )


def test_it_removes_a_broker_but_not_the_default(operator_client):
    operator_client.post(reverse("broker_add"), FORM)
    assert (
        operator_client.post(reverse("broker_delete", args=["second-cluster"])).status_code == 302
    )
    assert not Broker.objects.exists()
    operator_client.post(reverse("broker_delete", args=["default"]))
    assert AuditEntry.objects.filter(action="remove_broker", result="failed").count() == 1


def test_it_refuses_broker_changes_to_viewers(viewer_client):
    assert viewer_client.post(reverse("broker_add"), FORM).status_code == 403
    assert not Broker.objects.exists()
    page = viewer_client.get(reverse("brokers")).content.decode()
    assert "Add a broker" not in page
    assert AuditEntry.objects.get(action="broker_add").result == "denied"
