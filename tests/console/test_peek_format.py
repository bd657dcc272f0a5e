"""Peeked bodies as text, JSON and hex; cut bodies, binary bodies and masked fields."""

import base64
import json

from console.peek import hex_dump, mask, peeked_message

FIELDS = {"password", "token"}


def test_it_pretty_prints_json_and_masks_secret_fields_in_every_view():
    body = json.dumps({"user": "ada", "password": "s3cret", "nested": [{"token": "t"}]})
    raw = {
        "payload": body,
        "payload_encoding": "string",
        "payload_bytes": len(body),
        "properties": {
            "headers": {"Token": "abc", "x-tenant": "<b>acme</b>"},
            "content_type": "application/json",
        },
    }
    message = peeked_message(1, raw, FIELDS)
    assert "s3cret" not in message.text and "s3cret" not in message.pretty_json
    assert "s3cret" not in message.hex.replace(" ", "")
    assert '"user": "ada"' in message.pretty_json
    assert dict(message.headers)["Token"] == "••••••"
    assert dict(message.headers)["x-tenant"] == "<b>acme</b>"
    assert message.masked == 3
    assert ("content_type", "application/json") in message.properties


def test_it_shows_a_cut_body_with_its_full_size_and_no_json_view():
    raw = {
        "payload": '{"a": "' + "x" * 10,
        "payload_encoding": "string",
        "payload_bytes": 5000,
        "properties": [],
    }
    message = peeked_message(1, raw, FIELDS)
    assert message.cut and message.size == 5000 and message.shown == 17
    assert message.pretty_json is None
    assert "cannot be shown as JSON" in message.notes[0]


def test_it_shows_binary_bodies_as_hex_only():
    data = bytes(range(256)) * 20
    raw = {
        "payload": base64.b64encode(data).decode(),
        "payload_encoding": "base64",
        "payload_bytes": len(data),
        "properties": {},
    }
    message = peeked_message(1, raw, FIELDS)
    assert message.binary and message.text is None
    assert message.hex.splitlines()[1].startswith("00000010  10 11 12")
    assert message.hex_cut  # 5120 bytes, the hex view stops at 4 KiB


def test_it_keeps_text_cut_inside_a_multibyte_character():
    text = "ü" * 10
    cut = text.encode()[:7]  # ends half-way through a character
    raw = {
        "payload": base64.b64encode(cut).decode(),
        "payload_encoding": "base64",
        "payload_bytes": 20,
        "properties": {},
    }
    assert peeked_message(1, raw, FIELDS).text == "üüü"


def test_it_reads_x_death():
    headers = {
        "x-death": [
            {
                "queue": "work",
                "reason": "rejected",
                "count": 2,
                "exchange": "orders",
                "routing-keys": ["new"],
                "time": "t",
            }
        ]
    }
    raw = {"payload": "", "payload_bytes": 0, "properties": {"headers": headers}}
    death = peeked_message(1, raw, FIELDS).deaths[0]
    assert (death.queue, death.reason, death.count, death.exchange, death.routing_keys) == (
        "work",
        "rejected",
        2,
        "orders",
        ["new"],
    )


def test_it_masks_nothing_when_no_field_matches():
    assert mask({"a": 1, "b": [{"c": 2}]}, FIELDS) == ({"a": 1, "b": [{"c": 2}]}, 0)
    assert hex_dump(b"AB") == "00000000  41 42" + " " * 44 + "AB"
