"""Broker users through the pages: create, tags, password, permissions, topic permissions,
limits, delete; checked on the broker; hashes never shown; every change audited."""

import httpx
import pytest
from django.urls import reverse

from rabbit.management_http import BrokerNotFound
from tests.admin.conftest import last_entry, unique

MANAGEMENT = "http://127.0.0.1:15672/api/whoami"


def _can_log_in(name, password):
    return httpx.get(MANAGEMENT, auth=(name, password), timeout=5).status_code == 200


def test_it_creates_a_user_with_tags_and_a_password(
    admin_group_client, administrator, broker_admin, new_names
):
    name = unique("user")
    new_names["users"].append(name)
    response = admin_group_client.post(
        reverse("users"),
        {
            "name": name,
            "password": "s3cret-pw",
            "password_again": "s3cret-pw",
            "tags": ["monitoring", "management"],
            "other_tags": "team-a",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("user", args=[name])
    user = broker_admin.user(name)
    assert sorted(user["tags"]) == ["management", "monitoring", "team-a"]
    assert _can_log_in(name, "s3cret-pw")
    entry = last_entry("create_user")
    assert (entry.username, entry.result, entry.target) == (
        administrator.username,
        "ok",
        f"user {name}",
    )
    assert "s3cret-pw" not in entry.detail


def test_it_never_shows_a_password_hash(admin_group_client, broker_admin, broker_user):
    digest = broker_admin.user(broker_user)["password_hash"]
    for url in (reverse("users"), reverse("user", args=[broker_user])):
        page = admin_group_client.get(url).content.decode()
        assert broker_user in page
        assert digest not in page and "password_hash" not in page


def test_it_refuses_passwords_that_differ(admin_group_client, broker_admin):
    name = unique("user")
    response = admin_group_client.post(
        reverse("users"), {"name": name, "password": "a", "password_again": "b"}
    )
    assert response.status_code == 400
    assert "The two passwords differ." in response.content.decode()
    with pytest.raises(BrokerNotFound):
        broker_admin.user(name)
    assert last_entry("create_user").result == "failed"


def test_it_changes_tags_and_keeps_the_password_unless_given(
    admin_group_client, broker_admin, broker_user
):
    broker_admin.update_user(broker_user, ["monitoring"], "first-pw")
    url = reverse("user_update", args=[broker_user])
    response = admin_group_client.post(url, {"tags": ["policymaker"], "other_tags": ""})
    assert response.status_code == 302
    assert broker_admin.user(broker_user)["tags"] == ["policymaker"]
    assert _can_log_in(broker_user, "first-pw")
    admin_group_client.post(
        url, {"tags": ["policymaker"], "password": "second-pw", "password_again": "second-pw"}
    )
    assert _can_log_in(broker_user, "second-pw")
    assert not _can_log_in(broker_user, "first-pw")
    assert last_entry("update_user").detail == "tags ['policymaker'], new password"


def test_it_sets_and_removes_permissions(
    admin_group_client, broker_admin, broker_user, scratch_vhost
):
    response = admin_group_client.post(
        reverse("user_permission_set", args=[broker_user]),
        {"vhost": scratch_vhost, "configure": "^$", "write": "^orders", "read": ".*"},
    )
    assert response.status_code == 302
    [permission] = broker_admin.user_permissions(broker_user)
    assert (permission["vhost"], permission["configure"], permission["write"]) == (
        scratch_vhost,
        "^$",
        "^orders",
    )
    page = admin_group_client.get(reverse("user", args=[broker_user])).content.decode()
    assert "^orders" in page
    admin_group_client.post(
        reverse("user_permission_clear", args=[broker_user]), {"vhost": scratch_vhost}
    )
    assert broker_admin.user_permissions(broker_user) == []
    assert last_entry("clear_permissions").vhost == scratch_vhost


def test_it_refuses_a_permission_that_is_not_a_regex(
    admin_group_client, broker_admin, broker_user, scratch_vhost
):
    response = admin_group_client.post(
        reverse("user_permission_set", args=[broker_user]),
        {"vhost": scratch_vhost, "configure": "(", "write": ".*", "read": ".*"},
    )
    assert response.status_code == 400
    assert "Configure is not a valid regular expression" in response.content.decode()
    assert broker_admin.user_permissions(broker_user) == []


def test_it_sets_and_removes_topic_permissions(
    admin_group_client, broker_admin, broker_user, scratch_vhost
):
    admin_group_client.post(
        reverse("user_topic_permission_set", args=[broker_user]),
        {"vhost": scratch_vhost, "exchange": "amq.topic", "write": "^weather\\.", "read": ".*"},
    )
    [topic] = broker_admin.user_topic_permissions(broker_user)
    assert (topic["vhost"], topic["exchange"], topic["write"]) == (
        scratch_vhost,
        "amq.topic",
        "^weather\\.",
    )
    admin_group_client.post(
        reverse("user_topic_permission_clear", args=[broker_user]), {"vhost": scratch_vhost}
    )
    assert broker_admin.user_topic_permissions(broker_user) == []
    assert last_entry("set_topic_permissions").result == "ok"


def test_it_sets_and_clears_user_limits(admin_group_client, broker_admin, broker_user):
    url = reverse("user_limits", args=[broker_user])
    admin_group_client.post(url, {"max_connections": "5", "max_channels": "20"})
    assert broker_admin.user_limits(broker_user) == {"max-connections": 5, "max-channels": 20}
    admin_group_client.post(url, {"max_connections": "", "max_channels": "7"})
    assert broker_admin.user_limits(broker_user) == {"max-channels": 7}
    response = admin_group_client.post(url, {"max_connections": "-2"})
    assert response.status_code == 400
    assert broker_admin.user_limits(broker_user) == {"max-channels": 7}
    assert last_entry("set_user_limits").result == "failed"


def test_it_deletes_a_user(admin_group_client, broker_admin, broker_user):
    response = admin_group_client.post(reverse("user_delete", args=[broker_user]))
    assert response.status_code == 302
    with pytest.raises(BrokerNotFound):
        broker_admin.user(broker_user)
    assert last_entry("delete_user").target == f"user {broker_user}"


def test_it_will_not_delete_warrens_own_user(admin_group_client, broker_admin, mgmt):
    response = admin_group_client.post(reverse("user_delete", args=[mgmt.username]), follow=True)
    assert "deleting it would lock Warren out" in response.content.decode()
    assert broker_admin.user(mgmt.username)["name"] == mgmt.username
    assert last_entry("delete_user").result == "failed"


def test_it_answers_404_for_a_user_that_is_not_there(admin_group_client):
    response = admin_group_client.get(reverse("user", args=["nobody-" + unique("x")]))
    assert response.status_code == 404
    assert "The broker has no user" in response.content.decode()


def test_it_lets_a_superuser_in_and_keeps_operators_out(
    admin_client, client, operator, broker_user, broker_admin
):
    assert admin_client.get(reverse("users")).status_code == 200
    client.force_login(operator)
    response = client.post(reverse("user_delete", args=[broker_user]))
    assert response.status_code == 403
    assert "Administration needs the admin role" in response.content.decode()
    assert broker_admin.user(broker_user)["name"] == broker_user
    assert last_entry("user_delete").result == "denied"


def test_it_sends_anonymous_visitors_to_log_in(client, db):
    response = client.get(reverse("users"))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_it_refuses_a_change_without_the_csrf_token(administrator, broker_admin, broker_user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(administrator)
    response = client.post(reverse("user_delete", args=[broker_user]))
    assert response.status_code == 403
    assert broker_admin.user(broker_user)["name"] == broker_user


def test_it_names_a_few_vhosts_of_a_user_and_counts_the_rest(
    admin_group_client, broker_admin, broker_user, new_names
):
    vhosts = sorted(unique("vhost") for _ in range(6))
    new_names["vhosts"].extend(vhosts)
    for vhost in vhosts:
        broker_admin.create_vhost(vhost, "", [], "")
        broker_admin.set_permissions(vhost, broker_user, "", "", ".*")
    page = admin_group_client.get(reverse("users")).content.decode()
    row = page[page.index(f">{broker_user}</a>") :].split("</tr>")[0]
    assert [v for v in vhosts if v in row] == vhosts[:4]
    assert "and 2 more</span>" in row
