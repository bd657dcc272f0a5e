"""Definitions: export (whole broker or one vhost) as a download; import shown first as a
preview of what it would create, change and leave alone, applied only from that preview."""

import json
import re

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.admin.conftest import last_entry, unique


def _queue(name, **arguments):
    return {"name": name, "durable": True, "auto_delete": False, "arguments": arguments}


def _section(page, section_id):
    """The rows of one preview list, as text."""
    match = re.search(rf'<section class="card flush" id="{section_id}">(.*?)</section>', page, re.S)
    assert match, section_id
    return match.group(1)


def test_it_exports_the_whole_broker_and_one_vhost(admin_group_client, mgmt, scratch_vhost):
    mgmt.declare_queue(scratch_vhost, "exported")
    response = admin_group_client.get(reverse("definitions_export"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].startswith(
        'attachment; filename="definitions-default-broker-'
    )
    data = json.loads(response.content)
    assert {"vhost": scratch_vhost, "name": "exported"}.items() <= next(
        q for q in data["queues"] if q["name"] == "exported" and q["vhost"] == scratch_vhost
    ).items()
    assert any(v["name"] == scratch_vhost for v in data["vhosts"])
    response = admin_group_client.get(reverse("definitions_export") + f"?vhost={scratch_vhost}")
    data = json.loads(response.content)
    assert [q["name"] for q in data["queues"]] == ["exported"]
    assert "users" not in data
    entry = last_entry("export_definitions")
    assert (entry.result, entry.vhost, entry.target) == (
        "ok",
        scratch_vhost,
        f"vhost {scratch_vhost}",
    )


def _vhost_file(scratch_vhost, broker_admin, mgmt):
    """The scratch vhost holds `same` and `other` (max-length 1) and a policy; the file
    keeps `same`, asks `other` at max-length 2, changes the policy and adds two."""
    mgmt.declare_queue(scratch_vhost, "same")
    mgmt.declare_queue(scratch_vhost, "other", arguments={"x-max-length": 1})
    broker_admin.put_policy("policies", scratch_vhost, "cap", "^a", {"max-length": 5}, 0, "queues")
    return {
        "queues": [_queue("same"), _queue("other", **{"x-max-length": 2}), _queue("fresh")],
        "exchanges": [
            {
                "name": "events",
                "type": "topic",
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
        ],
        "bindings": [],
        "policies": [
            {
                "name": "cap",
                "pattern": "^a",
                "apply-to": "queues",
                "priority": 0,
                "definition": {"max-length": 50},
            }
        ],
    }


def test_it_previews_what_an_import_would_do(admin_group_client, broker_admin, mgmt, scratch_vhost):
    text = json.dumps(_vhost_file(scratch_vhost, broker_admin, mgmt))
    response = admin_group_client.post(
        reverse("definitions_import"),
        {"vhost": scratch_vhost, "file": SimpleUploadedFile("shop.json", text.encode())},
    )
    assert response.status_code == 302 and response["Location"] == reverse("definitions_import")
    page = admin_group_client.get(reverse("definitions_import")).content.decode()
    create, change, alone = (
        _section(page, "would-create"),
        _section(page, "would-change"),
        _section(page, "left-alone"),
    )
    assert "fresh in vhost" in create and "events in vhost" in create
    assert "cap in vhost" in change and "{&quot;max-length&quot;: 50}" in change
    assert "other in vhost" in change and "the broker refuses this change" in change
    assert "same in vhost" in alone
    assert "same in vhost" not in create + change and "fresh in vhost" not in change + alone
    assert 'data-count="create">2<' in page and 'data-count="change">2<' in page
    assert "The broker will refuse this import as it is" in page
    # Nothing changed on the broker by the preview.
    assert broker_admin.policy("policies", scratch_vhost, "cap")["definition"] == {"max-length": 5}
    assert not broker_admin.queue_exists(scratch_vhost, "fresh")


def test_it_applies_a_previewed_import(
    admin_group_client, administrator, broker_admin, mgmt, scratch_vhost
):
    data = _vhost_file(scratch_vhost, broker_admin, mgmt)
    data["queues"] = [q for q in data["queues"] if q["name"] != "other"]  # no refused change
    admin_group_client.post(
        reverse("definitions_import"), {"vhost": scratch_vhost, "text": json.dumps(data)}
    )
    page = admin_group_client.get(reverse("definitions_import")).content.decode()
    digest = re.search(r'name="digest" value="([0-9a-f]{64})"', page).group(1)
    response = admin_group_client.post(reverse("definitions_import_apply"), {"digest": digest})
    assert response.status_code == 302
    assert broker_admin.queue_exists(scratch_vhost, "fresh")
    assert broker_admin.exchange_exists(scratch_vhost, "events")
    assert broker_admin.policy("policies", scratch_vhost, "cap")["definition"] == {"max-length": 50}
    entry = last_entry("import_definitions")
    assert (entry.result, entry.username, entry.vhost) == (
        "ok",
        administrator.username,
        scratch_vhost,
    )
    # The import is used up: applying it again does nothing.
    again = admin_group_client.post(reverse("definitions_import_apply"), {"digest": digest})
    assert again.status_code == 302 and last_entry("import_definitions").result == "failed"


def test_it_imports_users_and_vhosts_into_the_whole_broker(
    admin_group_client, broker_admin, new_names
):
    user, vhost = unique("user"), unique("vhost")
    new_names["users"].append(user)
    new_names["vhosts"].append(vhost)
    data = {
        "users": [
            {
                "name": user,
                "password_hash": "",
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": ["monitoring"],
                "limits": {},
            }
        ],
        "vhosts": [{"name": vhost}],
        "permissions": [
            {"user": user, "vhost": vhost, "configure": "", "write": ".*", "read": ".*"}
        ],
        "queues": [dict(_queue("inbox"), vhost=vhost)],
    }
    admin_group_client.post(reverse("definitions_import"), {"vhost": "", "text": json.dumps(data)})
    page = admin_group_client.get(reverse("definitions_import")).content.decode()
    create = _section(page, "would-create")
    assert user in create and f"inbox in vhost {vhost}" in create
    assert f"{user} in vhost {vhost}" in create
    digest = re.search(r'name="digest" value="([0-9a-f]{64})"', page).group(1)
    admin_group_client.post(reverse("definitions_import_apply"), {"digest": digest})
    assert broker_admin.user(user)["tags"] == ["monitoring"]
    assert broker_admin.queue_exists(vhost, "inbox")
    assert user in [p["user"] for p in broker_admin.vhost_permissions(vhost)]


def test_it_refuses_a_file_that_is_not_definitions(admin_group_client):
    response = admin_group_client.post(
        reverse("definitions_import"),
        {"vhost": "", "file": SimpleUploadedFile("notes.json", b'{"hello": "world"}')},
    )
    assert response.status_code == 400
    assert "Nothing was imported: The file has none of the parts" in response.content.decode()
    assert last_entry("import_definitions").result == "failed"
    assert admin_group_client.get(reverse("definitions_import")).status_code == 302


def test_it_discards_a_waiting_import(admin_group_client, scratch_vhost):
    admin_group_client.post(
        reverse("definitions_import"),
        {"vhost": scratch_vhost, "text": json.dumps({"queues": [_queue("never")]})},
    )
    page = admin_group_client.post(reverse("definitions_import_discard"), follow=True)
    assert "was discarded: nothing changed" in page.content.decode()
    assert admin_group_client.get(reverse("definitions_import")).status_code == 302


def test_it_keeps_definitions_from_operators(operator_client):
    assert operator_client.get(reverse("definitions_export")).status_code == 403
    assert last_entry("definitions_export").result == "denied"
