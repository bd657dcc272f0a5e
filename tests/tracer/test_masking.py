"""tracer.masking: configured names masked in headers and JSON bodies, at any depth."""

import orjson
from django.test import override_settings

from tracer.masking import MASK, mask_body, mask_properties


def test_it_masks_header_names_case_insensitively_at_any_depth():
    properties = {
        "correlation_id": "keep",
        "headers": {
            "Authorization": "Bearer x",
            "inner": {"API_KEY": "k", "list": [{"Password": "p"}]},
            "plain": "stays",
        },
    }
    masked = mask_properties(properties)
    assert masked["correlation_id"] == "keep"
    assert masked["headers"]["Authorization"] == MASK
    assert masked["headers"]["inner"]["API_KEY"] == MASK
    assert masked["headers"]["inner"]["list"][0]["Password"] == MASK
    assert masked["headers"]["plain"] == "stays"
    assert properties["headers"]["Authorization"] == "Bearer x"  # the stored copy is untouched


def test_it_masks_json_body_fields():
    body = orjson.dumps({"user": "ann", "Password": "hunter2", "deep": [{"token": 5}]})
    masked = orjson.loads(mask_body(body))
    assert masked == {"user": "ann", "Password": MASK, "deep": [{"token": MASK}]}


def test_it_masks_a_json_body_cut_short():
    body = b'{"user": "ann", "secret": "s3cr\\"et", "passwd":12345, "more": "abc'
    masked = mask_body(body)
    assert b"s3cr" not in masked and b"12345" not in masked
    assert masked.count(MASK.encode()) == 2 and b'"user": "ann"' in masked


def test_it_leaves_other_bodies_alone():
    assert mask_body(b"\xff\x00binary") == b"\xff\x00binary"
    assert mask_body(b"password=plain-form") == b"password=plain-form"
    body = b'{"n": 30}'
    assert mask_body(body) is body or mask_body(body) == body


@override_settings(WARREN_MASKED_FIELDS=["customer"])
def test_it_follows_the_setting():
    assert orjson.loads(mask_body(b'{"customer": 1, "password": 2}')) == {
        "customer": MASK,
        "password": 2,
    }
