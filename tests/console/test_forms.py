"""The console's forms: headers, properties, moves, brokers."""

import pytest
from django import forms

from console.forms import BrokerForm, MoveForm, PublishForm, parse_headers


def test_it_reads_headers_as_lines_or_as_typed_json():
    assert parse_headers("a: 1\nb = two: three\n\n") == {"a": "1", "b": "two: three"}
    assert parse_headers('{"n": 2, "ok": true, "l": [1]}') == {"n": 2, "ok": True, "l": [1]}
    assert parse_headers("") == {}
    with pytest.raises(forms.ValidationError, match="line 1"):
        parse_headers("no separator")
    with pytest.raises(forms.ValidationError, match="JSON object"):
        parse_headers("[1, 2]")


def test_it_turns_the_publish_form_into_basic_properties():
    form = PublishForm(
        {
            "routing_key": "k",
            "body": "héllo",
            "body_encoding": "text",
            "delivery_mode": "1",
            "content_type": "text/plain",
            "priority": "5",
            "expiration": "60000",
            "headers": "x-a: 1",
            "mandatory": "on",
        }
    )
    assert form.is_valid(), form.errors
    assert form.cleaned_data["body_bytes"] == "héllo".encode()
    assert form.properties() == {
        "delivery_mode": 1,
        "content_type": "text/plain",
        "expiration": "60000",
        "priority": 5,
        "headers": {"x-a": "1"},
    }


def test_it_refuses_a_priority_out_of_range_and_bad_base64():
    form = PublishForm(
        {
            "routing_key": "k",
            "body": "%%%",
            "body_encoding": "base64",
            "delivery_mode": "2",
            "priority": "300",
        }
    )
    assert not form.is_valid()
    assert set(form.errors) == {"priority", "body"}


def test_it_checks_the_move_target():
    assert not MoveForm({"mode": "queue", "target": ""}, source="dlq").is_valid()
    assert not MoveForm({"mode": "queue", "target": "dlq"}, source="dlq").is_valid()
    form = MoveForm({"mode": "x-death-route", "limit": "7"}, source="dlq")
    assert form.is_valid()
    assert form.move_arguments() == {"target_queue": None, "x_death": "route", "limit": 7}
    everything = MoveForm({"mode": "queue", "target": "work"}, source="dlq")
    assert everything.is_valid()
    assert everything.move_arguments()["limit"] == 10_000


@pytest.mark.django_db
def test_it_makes_a_slug_from_the_name_and_demands_a_password_for_new_brokers():
    data = {
        "name": "Rabbit Two",
        "slug": "",
        "management_url": "http://r2:15672/",
        "amqp_url": "amqp://r2:5672/%2F",
        "username": "u",
        "password": "",
    }
    form = BrokerForm(data)
    assert not form.is_valid() and "password" in form.errors
    form = BrokerForm({**data, "password": "p"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["slug"] == "rabbit-two"
    assert 'value="p"' not in str(form["password"])
