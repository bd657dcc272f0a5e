"""What the seed workloads' clients saw: one CallRecord per call, kept in a thread-safe Ledger.

The records are the client's side of the story, so that a test can set them
beside what Warren traced (same correlation id, the client's own stopwatch).
For one-way workloads (sender/receiver, pipes and filters) a "reply" is what
arrived at the far end: a receiver's receipt, the end of the chain, or a
failure report.
"""

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass
class CallRecord:
    correlation_id: str | None
    reply_to: str | None
    # Exchange + routing key as Warren names a service: "rpc_queue", "amq.topic / weather.ohio".
    service: str
    request_body: bytes
    replies: list[bytes] = field(default_factory=list)
    sent_at: float = 0.0  # time.time() just before the publish
    answered_at: float | None = None  # time.time() at the first reply
    client_ms: float | None = None  # perf_counter: just before publish -> first reply received
    thread: str | None = None  # the client thread (or receiver) that got the first reply


@dataclass
class WorkloadResult:
    calls: list[CallRecord]

    @property
    def sent(self):
        return len(self.calls)

    @property
    def answered(self):
        return sum(1 for call in self.calls if call.replies)

    @property
    def unanswered(self):
        return self.sent - self.answered


@dataclass
class _Entry:
    record: CallRecord
    started: float  # perf_counter at publish
    expected: int  # replies the client waits for (0: none is coming, by design)


class Ledger:
    """Calls in flight and done, shared by a workload's threads.

    `keep=False` (the demo, running for days) forgets a call once it has all
    its replies and never holds more than `capacity` calls; the counters keep
    counting.
    """

    def __init__(self, keep=True, capacity=2000):
        self.keep = keep
        self.capacity = capacity
        self._entries = OrderedDict()
        self._changed = threading.Condition()
        self.sent_count = 0
        self.answered_count = 0
        self.reply_count = 0

    def sent(self, key, record, expected=1):
        """Open a call; call this immediately before publishing (it starts the stopwatch)."""
        with self._changed:
            if not self.keep:
                while len(self._entries) >= self.capacity:
                    self._entries.popitem(last=False)
            record.sent_at = time.time()
            self._entries[key] = _Entry(record, time.perf_counter(), expected)
            self.sent_count += 1
            self._changed.notify_all()
        return record

    def replied(self, key, body, thread=None):
        """Note a reply (or arrival) for the call `key`; None when no such call is open."""
        received = time.perf_counter()
        with self._changed:
            entry = self._entries.get(key)
            if entry is None:
                return None
            record = entry.record
            if not record.replies:
                record.answered_at = time.time()
                record.client_ms = (received - entry.started) * 1000.0
                record.thread = thread if thread is not None else record.thread
                self.answered_count += 1
            record.replies.append(bytes(body))
            self.reply_count += 1
            if not self.keep and len(record.replies) >= entry.expected:
                del self._entries[key]
            self._changed.notify_all()
            return record

    def is_open(self, key):
        with self._changed:
            return key in self._entries

    def _all_done(self):
        return all(len(e.record.replies) >= e.expected for e in self._entries.values())

    def wait_done(self, timeout):
        """Wait until every call has the replies it expects; False when time ran out."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not self._all_done():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    def records(self):
        """The calls in the order they were sent (copies: later replies do not change them)."""
        with self._changed:
            return [
                CallRecord(**{**vars(e.record), "replies": list(e.record.replies)})
                for e in self._entries.values()
            ]
