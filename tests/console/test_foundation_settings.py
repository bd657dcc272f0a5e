"""The strict settings helpers: good values read, bad values stop the start with words."""

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured

from console.env import env_bool, env_duration, env_int, env_list, env_url, parse_duration


def test_it_reads_defaults_when_unset():
    assert env_int("X", 7, environ={}) == 7
    assert env_bool("X", False, environ={}) is False
    assert env_duration("X", timedelta(seconds=30), environ={}) == timedelta(seconds=30)
    assert env_list("X", ["/"], environ={}) == ["/"]


def test_it_reads_good_values():
    assert env_int("N", 1, environ={"N": " 65536 "}) == 65536
    assert env_bool("B", False, environ={"B": "Yes"}) is True
    assert env_bool("B", True, environ={"B": "off"}) is False
    assert env_duration("D", None, environ={"D": "7d"}) == timedelta(days=7)
    assert env_duration("D", None, environ={"D": "250ms"}) == timedelta(milliseconds=250)
    assert env_duration("D", None, environ={"D": "30"}) == timedelta(seconds=30)
    assert env_list("L", [], environ={"L": "/, orders ,billing"}) == ["/", "orders", "billing"]
    assert env_url("U", "", ("amqp",), environ={"U": "amqp://u:p@h:5672/%2F"}).startswith("amqp")


@pytest.mark.parametrize(
    ("helper", "value", "words"),
    [
        (lambda env: env_int("WARREN_BODY_LIMIT", 1, environ=env), "64k", "whole number"),
        (lambda env: env_int("WARREN_BODY_LIMIT", 1, minimum=0, environ=env), "-5", "at least 0"),
        (lambda env: env_bool("DJANGO_DEBUG", False, environ=env), "maybe", "true/false"),
        (lambda env: env_duration("WARREN_RPC_TIMEOUT", None, environ=env), "soon", "duration"),
        (lambda env: env_duration("WARREN_RPC_TIMEOUT", None, environ=env), "0s", "positive"),
        (lambda env: env_list("WARREN_TRACE_VHOSTS", [], environ=env), "a,,b", "empty items"),
        (lambda env: env_url("REDIS_URL", "", ("redis",), environ=env), "http://x", "redis://"),
        (lambda env: env_url("REDIS_URL", "", ("redis",), environ=env), "redis://h:port", "port"),
    ],
)
def test_it_rejects_bad_values_with_a_clear_message(helper, value, words):
    name = "VAR"
    with pytest.raises(ImproperlyConfigured) as caught:
        helper(
            {
                "WARREN_BODY_LIMIT": value,
                "DJANGO_DEBUG": value,
                "WARREN_RPC_TIMEOUT": value,
                "WARREN_TRACE_VHOSTS": value,
                "REDIS_URL": value,
                name: value,
            }
        )
    assert words in str(caught.value)
    assert repr(value) in str(caught.value)


def test_it_parses_durations_or_says_none():
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("1.5m") == timedelta(seconds=90)
    assert parse_duration("7 days") is None


def test_it_refuses_to_start_with_a_bad_setting(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env={"PATH": "/usr/bin:/bin", "WARREN_BODY_LIMIT": "lots", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "WARREN_BODY_LIMIT='lots' is not valid: expected a whole number" in result.stderr
