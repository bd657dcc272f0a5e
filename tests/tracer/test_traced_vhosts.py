"""The stored choice of traced vhosts: seeded once from WARREN_TRACE_VHOSTS, then the
operator's; `manage.py trace` and `manage.py demo` store it too."""

from io import StringIO

import pytest
from django.core.management import call_command

from tracer.models import TracedVhost
from tracer.store import traced

pytestmark = pytest.mark.django_db


def test_it_seeds_the_choice_from_the_setting_on_first_use():
    assert traced.wanted_vhosts(["/", "orders"]) == {"/", "orders"}
    assert set(TracedVhost.objects.values_list("vhost", flat=True)) == {"/", "orders"}


def test_it_keeps_the_stored_choice_once_there_is_one():
    traced.wanted_vhosts(["/"])
    assert traced.wanted_vhosts(["billing"]) == {"/"}


def test_it_keeps_a_vhost_switched_off_so_the_seed_never_comes_back():
    traced.wanted_vhosts(["/"])
    assert traced.choose("/", False, ["/"], by="op") is True
    assert traced.wanted_vhosts(["/"]) == set()
    row = TracedVhost.objects.get(vhost="/")
    assert (row.traced, row.changed_by) == (False, "op")


def test_it_says_whether_a_choice_changed_anything():
    traced.wanted_vhosts([])
    assert traced.choose("orders", True, []) is True
    assert traced.choose("orders", True, []) is False
    assert traced.choose("billing", False, []) is False  # never traced: nothing changes


def test_it_keeps_every_vhost_as_a_star():
    assert traced.wanted_vhosts(["*"]) == {"*"}
    assert traced.is_traced("anything", {"*"}) and not traced.is_traced("a", {"b"})


def test_it_stores_the_choice_from_the_trace_command():
    out = StringIO()
    call_command("trace", "orders", stdout=out)
    assert "now traces vhost 'orders'" in out.getvalue()
    assert "orders" in traced.wanted_vhosts([])
    call_command("trace", "orders", "--off", stdout=out)
    assert "orders" not in traced.wanted_vhosts([])
    assert "no longer traces vhost 'orders'" in out.getvalue()


def test_it_adds_the_demo_vhost_to_the_traced_ones(scratch_vhost, settings):
    settings.WARREN_TRACE_VHOSTS = ["/"]
    out = StringIO()
    call_command(
        "demo", "--vhost", scratch_vhost, "--duration", "0.1", "--only", "fibonacci", stdout=out
    )
    assert f"now traces vhost {scratch_vhost!r}" in out.getvalue()
    assert traced.wanted_vhosts(["/"]) == {"/", scratch_vhost}
