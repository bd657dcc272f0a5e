"""The tap stops within what `make run`'s supervisor (honcho) waits before it kills.

honcho sends SIGTERM to every process on Ctrl-C and SIGKILLs what is still
there 5 s later. A tap killed so loses nothing (what it had not acked waits in
the tap queue), but it leaves its session open and its last batch unfinished:
it must be done by then, even while the database refuses its batch.
"""

import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings
from honcho import manager

from tests.faults.test_database_unavailable import DatabaseLock
from tests.polling import wait_until
from tests.tracer.tapping import ROOT, client, database_url
from tracer.models import TapSession

# Serial: what is measured here is a stop's duration.
pytestmark = [pytest.mark.slow, pytest.mark.serial, pytest.mark.django_db(transaction=True)]


def test_its_stop_grace_is_shorter_than_the_supervisors_kill_wait():
    assert settings.WARREN_TAP_STOP_GRACE < manager.KILL_WAIT


class Supervised:
    """`honcho start` with the tap and a process that ends at once on SIGTERM (as
    Daphne does): honcho's 5 s start when the first of its processes has ended."""

    def __init__(self, tmp_path, vhost):
        procfile = tmp_path / "Procfile"
        procfile.write_text(
            f"web: {sys.executable} -c 'import time; time.sleep(3600)'\n"
            f"tap: {sys.executable} manage.py tap --vhost {vhost}\n"
        )
        env = dict(os.environ, DATABASE_URL=database_url(), PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "honcho", "-f", str(procfile), "-d", str(ROOT), "start"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def session(self):
        return TapSession.objects.order_by("-id").first()

    def ctrl_c(self):
        """What Ctrl-C in a terminal does: SIGINT to the whole process group."""
        os.killpg(self.process.pid, signal.SIGINT)
        started = time.monotonic()
        output, _ = self.process.communicate(timeout=30)
        return time.monotonic() - started, output


def connected(vhost):
    def probe():
        session = TapSession.objects.order_by("-id").first()
        return session is not None and (session.connected or {}).get(vhost)

    return probe


def test_ctrl_c_under_the_supervisor_ends_the_session_cleanly(tmp_path, scratch_vhost):
    supervised = Supervised(tmp_path, scratch_vhost)
    wait_until(connected(scratch_vhost), timeout=30.0, what="the supervised tap to connect")
    took, output = supervised.ctrl_c()
    session = supervised.session()
    assert "SIGKILL" not in output, output
    assert session.ended_at is not None, output
    assert took < manager.KILL_WAIT, output


def test_a_tap_held_up_by_the_database_still_stops_before_it_would_be_killed(
    tmp_path, scratch_vhost
):
    supervised = Supervised(tmp_path, scratch_vhost)
    wait_until(connected(scratch_vhost), timeout=30.0, what="the supervised tap to connect")
    lock = DatabaseLock(hold_s=6.0)  # past the tap's 4 s grace, not longer
    lock.start()
    assert lock.ready.wait(5) and lock.error is None
    publisher = client(scratch_vhost)
    channel = publisher.channel()
    for index in range(20):
        channel.basic_publish("", "nowhere", b"%d" % index)
    publisher.close()
    time.sleep(0.5)  # the tap is now retrying a batch the database refuses
    took, output = supervised.ctrl_c()
    lock.released.wait(15)
    assert "SIGKILL" not in output, output
    assert took < manager.KILL_WAIT, output
