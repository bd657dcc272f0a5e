"""The broker's copies of frames an earlier capture spooled but may not have
had acked: a capture that dies between its commit and its ack, or whose ack
was still in the socket when the connection died, leaves deliveries the broker
sends again, flagged redelivered. The next capture drops each such copy once,
matched byte for byte (as a digest: a prefetch of big bodies would otherwise
stay in memory), so every trace message is spooled once.
"""

import hashlib
import time
from collections import Counter
from collections.abc import Iterable
from typing import Final

from rabbit.delivery import Delivery

# A dead connection's deliveries are requeued well within this: after it, a
# frame whose copy never came was acked after all.
COPIES_WAIT_S: Final = 10.0


def fingerprint(routing_key: bytes, header: bytes, body: bytes) -> bytes:
    """A trace message's digest, the same for every copy the broker sends of it."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (routing_key, header, body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


class RedeliveredCopies:
    """The copies still expected, each at most as often as it was spooled.

    They usually come first, but not always: the broker requeues a dead
    connection's deliveries when it has closed it, which can be after the next
    connection consumes. So they are looked for all along, until all came or
    COPIES_WAIT_S passed.
    """

    def __init__(
        self, identities: Iterable[tuple[bytes, bytes, bytes]], wait_s: float = COPIES_WAIT_S
    ) -> None:
        self._left: Counter[bytes] = Counter(fingerprint(*identity) for identity in identities)
        self._until = time.monotonic() + wait_s
        # The delivery tag at which the last copy came (or the wait for them
        # ended); None while some are still expected.
        self.done_tag: int | None = None if self._left else 0

    @property
    def expected(self) -> bool:
        """Whether any copy is still looked for."""
        return bool(self._left)

    def is_copy(self, delivery: Delivery) -> bool:
        """Whether `delivery` is one of the copies (each is answered True once)."""
        left = self._left
        if not left:
            return False
        if time.monotonic() > self._until:
            left.clear()  # acked after all: the broker sends them no more
            self.done_tag = delivery.tag
            return False
        if not delivery.redelivered:
            return False
        digest = fingerprint(delivery.routing_key, delivery.raw, delivery.body)
        count = left.get(digest, 0)
        if not count:
            return False
        if count == 1:
            del left[digest]
            if not left:
                self.done_tag = delivery.tag
        else:
            left[digest] = count - 1
        return True
