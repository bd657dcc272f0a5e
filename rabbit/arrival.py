"""When a packet's bytes arrived: the kernel's receive stamps (Linux SO_TIMESTAMPNS).

The kernel stamps every packet as it arrives, so a frame read late (the reader
busy with the previous ones, or waiting for a core) still carries the time its
bytes came. A read returns the stamp of the last packet it took (rabbit/raw.py).
"""

import socket
import struct
import sys
from collections.abc import Iterable

# Linux's SO_TIMESTAMPNS (the same number as its control message, SCM_TIMESTAMPNS):
# the kernel stamps every packet as it arrives, so a frame read late (the feeder
# busy decoding the previous ones, or waiting for a core) still carries the time
# its bytes came. Python's socket module does not name it.
SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@qq")
STAMP_SPACE = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0


def ask_for_kernel_stamps(sock: socket.socket) -> bool:
    """Switch on the kernel's receive timestamps (Linux); False where there are none."""
    if not sys.platform.startswith("linux") or not STAMP_SPACE:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


def kernel_stamp_ns(ancillary: Iterable[tuple[int, int, bytes]]) -> int | None:
    """The SCM_TIMESTAMPNS control message of a recvmsg, in ns since the epoch, or None."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            seconds: int
            nanoseconds: int
            seconds, nanoseconds = _TIMESPEC.unpack_from(data)
            return seconds * 1_000_000_000 + nanoseconds
    return None
