"""The load benchmark is a command of its own (`python manage.py bench_load`, about 90 s,
run by hand); the suite only checks that it exists and keeps to its bounds."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError


@pytest.mark.parametrize(
    "args",
    [["--clients", "0"], ["--clients", "500"], ["--sockets", "101"], ["--seconds", "301"]],
)
def test_it_refuses_an_unbounded_run(args):
    with pytest.raises(CommandError, match="Bounded"):
        call_command("bench_load", *args)
