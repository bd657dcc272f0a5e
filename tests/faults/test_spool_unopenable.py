"""A spool that cannot be opened (its disk full when the tap starts): the tap says
why and tries again, and reads the vhost as soon as the spool opens."""

import pytest

from tests.polling import wait_until
from tests.small_disk import fill, small_disk
from tests.tracer.tapping import TapProcess, client
from tracer.models import Message

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_it_opens_the_spool_once_its_disk_has_room_and_reads_on(scratch_vhost):
    with small_disk(40) as folder:  # room for the spool's release reserve once freed
        ballast = fill(folder, leave_bytes=0)
        tap = TapProcess(scratch_vhost, env={"WARREN_SPOOL_DIR": str(folder)}).start(wait=False)
        try:
            wait_until(
                lambda: "cannot open its spool" in tap.output(),
                timeout=45,
                what="the tap to say it cannot open its spool",
            )
            ballast.unlink()  # room again: the next try opens it
            tap.wait_connected()
            connection = client(scratch_vhost)
            channel = connection.channel()
            for number in range(20):
                channel.basic_publish("", "nowhere", b"after the disk had room %d" % number)
            connection.close()
            wait_until(
                lambda: Message.objects.filter(vhost=scratch_vhost).count() == 20,
                timeout=30,
                what="the 20 publishes stored",
            )
        finally:
            tap.stop()
