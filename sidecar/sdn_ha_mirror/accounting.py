"""Per-session counters and the bounded queue toward the master.

Every switch->controller message the mirror sees whole (relayed by the
sidecar, or reassembled from the kernel's copies) is counted exactly once
more as mirrored, filtered or dropped, so at all times:

    relayed = mirrored + filtered + dropped
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, fields

from .openflow import HEADER_LEN, Message, Route


@dataclass
class Counters:
    relayed_messages: int = 0
    relayed_bytes: int = 0
    mirrored_messages: int = 0
    mirrored_bytes: int = 0
    filtered_messages: int = 0
    filtered_bytes: int = 0
    dropped_messages: int = 0
    dropped_bytes: int = 0
    swallowed_messages: int = 0  # master writes that never reach the switch
    unanswered_messages: int = 0  # master requests the cache could not answer in time
    # Bytes of the switch's stream that were never seen as part of a whole
    # message (the capture missed them, or picked the stream up mid-flight).
    # They are outside the identity: nobody knows how many messages they held.
    unseen_bytes: int = 0

    def consistent(self) -> bool:
        return self.relayed_messages == self.mirrored_messages + self.filtered_messages + self.dropped_messages and (
            self.relayed_bytes == self.mirrored_bytes + self.filtered_bytes + self.dropped_bytes
        )

    def add(self, other: Counters) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class MirrorQueue:
    """Whole messages waiting for the master. When the master is slow and the
    queue holds `limit` bytes, new messages are dropped whole and counted;
    the switch's own path never waits for it."""

    limit: int
    counters: Counters = field(default_factory=Counters)
    _queue: deque = field(default_factory=deque)
    _bytes: int = 0

    def account(self, message: Message, decision: Route, deliverable: bool = True) -> bool:
        """Count one relayed message; return True when it was queued for the master.
        A message for the master is dropped when the queue is full, or when
        the master is not connected (`deliverable` false): there is no replay."""
        if decision is Route.MIRROR:
            return self.account_run(message.data, 1, deliverable)
        c = self.counters
        c.relayed_messages += 1
        c.relayed_bytes += len(message.data)
        c.filtered_messages += 1
        c.filtered_bytes += len(message.data)
        return False

    def account_run(self, data: bytes, count: int, deliverable: bool = True) -> bool:
        """Count `count` consecutive whole messages for the master, `data`
        holding exactly them; queue as many as fit and drop the rest whole."""
        size = len(data)
        c = self.counters
        c.relayed_messages += count
        c.relayed_bytes += size
        room = self.limit - self._bytes if deliverable else 0
        if size > room:
            kept, kept_count = _whole_prefix(data, room)
            c.dropped_messages += count - kept_count
            c.dropped_bytes += size - kept
            data, size, count = data[:kept], kept, kept_count
            if not count:
                return False
        self._queue.append(data)
        self._bytes += size
        c.mirrored_messages += count
        c.mirrored_bytes += size
        return True

    def discard(self) -> None:
        """The master is away: what waited for it is dropped, and counted so."""
        c = self.counters
        while self._queue:
            data = self._queue.popleft()
            _, count = _whole_prefix(data, len(data))
            c.mirrored_messages -= count
            c.mirrored_bytes -= len(data)
            c.dropped_messages += count
            c.dropped_bytes += len(data)
        self._bytes = 0

    def take(self, max_bytes: int = 1 << 20) -> bytes:
        """Up to max_bytes of whole queued messages, in order, as one write."""
        out = bytearray()
        while self._queue and (not out or len(out) + len(self._queue[0]) <= max_bytes):
            data = self._queue.popleft()
            self._bytes -= len(data)
            out += data
        return bytes(out)

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def queued_bytes(self) -> int:
        return self._bytes


def _whole_prefix(data: bytes, room: int) -> tuple[int, int]:
    """Bytes and count of the leading whole messages of `data` that fit in `room`."""
    end = count = 0
    while end + HEADER_LEN <= len(data):
        length = int.from_bytes(data[end + 2 : end + 4], "big")
        if end + length > room:
            break
        end += length
        count += 1
    return end, count
