"""The tap's helper processes (capture, feeder), each on one end of a socket pair."""

import contextlib
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from rabbit.field_tables import AMQPRawError

CHILD_START_S = 20.0
CHILD_STOP_S = 1.0
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class ChildRefused(AMQPRawError):
    """The child answered its configuration with something other than "ready"."""

    def __init__(self, answer: tuple[Any, ...], reason: str) -> None:
        super().__init__(reason)
        self.answer = answer


class Child:
    """A capture or feeder process and its pipe.

    A plain subprocess on one end of a socket pair (multiprocessing's spawn would
    add a resource-tracker process and its memory for nothing); it learns what
    to do from its first message, so no credential shows on a command line, and
    it ends when the pipe closes (the tap gone, even by SIGKILL).
    """

    def __init__(
        self, module: str, config: tuple[str, Any], on_start: Callable[[int], None] | None = None
    ) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", module, str(theirs.fileno())],
                cwd=PROJECT_ROOT,
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        if on_start is not None:
            on_start(self.process.pid)
        self.conn: Connection[Any, Any] = Connection(ours.detach())
        self._lock = threading.Lock()
        self.send(config)
        try:
            if not self.conn.poll(CHILD_START_S):
                raise AMQPRawError(f"the tap's {module} process did not start in time")
            answer = self.conn.recv()
        except (EOFError, OSError) as error:
            self.close(None)
            raise AMQPRawError(f"the tap's {module} process ended: {error}") from None
        except AMQPRawError:
            self.close(None)
            raise
        if answer[0] != "ready":
            self.close(None)
            raise ChildRefused(answer, str(answer[1]) if len(answer) > 1 else f"{module} failed")
        self.ready = answer

    def send(self, message: Any) -> None:
        with self._lock, contextlib.suppress(OSError, ValueError):
            self.conn.send(message)

    def close(self, goodbye: str | None) -> None:
        if goodbye is not None:
            self.send((goodbye,))
        try:
            self.process.wait(CHILD_STOP_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(CHILD_STOP_S)
        with contextlib.suppress(OSError):
            self.conn.close()
