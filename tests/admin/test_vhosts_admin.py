"""Vhosts through the administration pages: create with description, tags and default queue
type; limits; delete only after typing the name; audited."""

import pytest
from django.urls import reverse

from rabbit.management_http import BrokerNotFound
from tests.admin.conftest import last_entry, unique


def test_it_creates_a_vhost_with_its_metadata(admin_group_client, broker_admin, mgmt, new_names):
    name = unique("vhost")
    new_names["vhosts"].append(name)
    response = admin_group_client.post(
        reverse("admin_vhosts"),
        {
            "name": name,
            "description": "Orders of the shop",
            "tags": "shop, prod",
            "default_queue_type": "quorum",
            "grant_warren": "on",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("admin_vhost", args=[name])
    vhost = broker_admin.vhost(name)
    assert vhost["description"] == "Orders of the shop"
    assert sorted(vhost["tags"]) == ["prod", "shop"]
    assert vhost["default_queue_type"] == "quorum"
    assert [p["user"] for p in broker_admin.vhost_permissions(name)] == [mgmt.username]
    entry = last_entry("create_vhost")
    assert (entry.result, entry.vhost) == ("ok", name)
    page = admin_group_client.get(reverse("admin_vhost", args=[name])).content.decode()
    assert "Orders of the shop" in page and "default queue type quorum" in page


def test_it_sets_and_clears_vhost_limits(admin_group_client, broker_admin, scratch_vhost):
    url = reverse("admin_vhost_limits", args=[scratch_vhost])
    admin_group_client.post(url, {"max_connections": "10", "max_queues": "200"})
    assert broker_admin.vhost_limits(scratch_vhost) == {"max-connections": 10, "max-queues": 200}
    admin_group_client.post(url, {"max_connections": "", "max_queues": "0"})
    assert broker_admin.vhost_limits(scratch_vhost) == {"max-queues": 0}
    page = admin_group_client.get(reverse("admin_vhosts")).content.decode()
    assert "max-queues 0" in page
    assert last_entry("set_vhost_limits").vhost == scratch_vhost


def test_it_deletes_a_vhost_only_when_its_name_is_typed(
    admin_group_client, broker_admin, new_names
):
    name = unique("vhost")
    new_names["vhosts"].append(name)
    broker_admin.create_vhost(name, "", [], "")
    url = reverse("admin_vhost_delete", args=[name])
    response = admin_group_client.post(url, {"confirm": "something else"})
    assert response.status_code == 400
    assert f"Type “{name}” exactly to confirm." in response.content.decode()
    assert broker_admin.vhost(name)["name"] == name
    assert last_entry("delete_vhost").result == "failed"
    response = admin_group_client.post(url, {"confirm": name})
    assert response.status_code == 302
    with pytest.raises(BrokerNotFound):
        broker_admin.vhost(name)
    assert last_entry("delete_vhost").result == "ok"


def test_it_names_the_vhost_in_the_delete_confirmation(admin_group_client, scratch_vhost):
    page = admin_group_client.get(reverse("admin_vhost", args=[scratch_vhost])).content.decode()
    assert f"Delete vhost '{scratch_vhost}' with every queue" in page
    assert f"Delete vhost {scratch_vhost}</button>" in page


def test_it_refuses_vhost_administration_to_operators(
    client, operator, broker_admin, scratch_vhost
):
    client.force_login(operator)
    response = client.post(
        reverse("admin_vhost_delete", args=[scratch_vhost]), {"confirm": scratch_vhost}
    )
    assert response.status_code == 403
    assert broker_admin.vhost(scratch_vhost)["name"] == scratch_vhost
