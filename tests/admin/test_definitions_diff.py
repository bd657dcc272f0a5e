"""The import preview's comparison: create, change, leave alone; never a password hash."""

import json

import pytest

from console.definitions_diff import DefinitionsError, compare, parse

CURRENT = {
    "users": [{"name": "app", "password_hash": "h1", "hashing_algorithm": "sha256", "tags": []}],
    "vhosts": [{"name": "/"}, {"name": "shop", "description": "old"}],
    "permissions": [{"user": "app", "vhost": "shop", "configure": "", "write": ".*", "read": ".*"}],
    "policies": [],
    "queues": [
        {"name": "orders", "vhost": "shop", "durable": True, "auto_delete": False, "arguments": {}},
        {"name": "audit", "vhost": "shop", "durable": True, "auto_delete": False, "arguments": {}},
    ],
    "exchanges": [],
    "bindings": [],
}


def test_it_sorts_every_object_into_create_change_or_unchanged():
    imported = json.loads(json.dumps(CURRENT))
    imported["users"][0]["password_hash"] = "h2"
    imported["vhosts"][1]["description"] = "new"
    imported["queues"][0]["arguments"] = {"x-max-length": 10}
    imported["queues"].append(
        {"name": "new-q", "vhost": "shop", "durable": True, "auto_delete": False, "arguments": {}}
    )
    imported["exchanges"] = [{"name": "events", "vhost": "shop", "type": "topic"}]
    preview = compare(imported, CURRENT)
    assert sorted(i.title for i in preview.create) == [
        "events in vhost shop",
        "new-q in vhost shop",
    ]
    changed = {i.title: i for i in preview.change}
    assert set(changed) == {"app", "shop", "orders in vhost shop"}
    assert changed["app"].changes == ["password: changes"]
    assert changed["shop"].changes == ['description: "old" → "new"']
    assert changed["orders in vhost shop"].changes == ['arguments: {} → {"x-max-length": 10}']
    assert changed["orders in vhost shop"].refused and not changed["shop"].refused
    assert sorted(i.title for i in preview.unchanged) == [
        "/",
        "app in vhost shop",
        "audit in vhost shop",
    ]
    shown = json.dumps([i.changes for i in preview.change])
    assert "h1" not in shown and "h2" not in shown


def test_it_reads_a_vhost_export_into_the_vhost_chosen():
    vhost_export = {
        "queues": [{"name": "orders", "durable": True, "auto_delete": False, "arguments": {}}],
        "users": [{"name": "someone"}],
    }
    current = {"queues": [dict(CURRENT["queues"][0], vhost="other")]}
    preview = compare(vhost_export, current, vhost="other")
    assert [i.title for i in preview.unchanged] == ["orders in vhost other"]
    assert preview.create == []
    assert preview.ignored[0].startswith("users (an import into one vhost takes only")


def test_it_treats_tags_as_a_set():
    current = {"users": [{"name": "u", "tags": ["a", "b"]}]}
    imported = {"users": [{"name": "u", "tags": "b,a"}]}
    assert [i.title for i in compare(imported, current).unchanged] == ["u"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{nope", "not valid JSON"),
        ("[]", "is a JSON object"),
        ('{"hello": 1}', "none of the parts"),
        ('{"queues": {"a": 1}}', "“queues” must be a list of objects"),
    ],
)
def test_it_refuses_what_is_not_a_definitions_file(text, words):
    with pytest.raises(DefinitionsError, match=words):
        parse(text)
