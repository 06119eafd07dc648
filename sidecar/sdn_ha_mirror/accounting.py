"""Per-session counters and the bounded queue toward the master.

Every switch->controller message the sidecar relays is counted exactly once
more as mirrored, filtered or dropped, so at all times:

    relayed = mirrored + filtered + dropped
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, fields

from .openflow import Message, Route


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
        size = len(message.data)
        c = self.counters
        c.relayed_messages += 1
        c.relayed_bytes += size
        if decision is not Route.MIRROR:
            c.filtered_messages += 1
            c.filtered_bytes += size
            return False
        if not deliverable or self._bytes + size > self.limit:
            c.dropped_messages += 1
            c.dropped_bytes += size
            return False
        self._queue.append(message.data)
        self._bytes += size
        c.mirrored_messages += 1
        c.mirrored_bytes += size
        return True

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
