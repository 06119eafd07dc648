"""Master requests that nothing is cached for yet.

Each waits for the backup's next reply of its kind (say, a stats kind the
backup has not polled yet) and is answered from it; after `timeout` seconds
it is answered with an OpenFlow error instead. Nothing the master asks ever
reaches a switch.
"""

from __future__ import annotations

import asyncio
import itertools
import weakref
from collections.abc import Callable

from .openflow import Message
from .shadow import SwitchView, answer

HOLD_LIMIT = 64  # requests held per master session at most
HOLD_BYTES = 1 << 18  # and their bytes


class Holding:
    def __init__(self, timeout: float, on_expire: Callable[[Message], None]):
        self.timeout = timeout
        # Weakly: the owner holds the holding, and a cycle would keep both
        # until the cycle collector runs.
        try:
            self.on_expire = weakref.WeakMethod(on_expire)
        except TypeError:  # not a bound method: nothing to hold weakly
            self.on_expire = lambda: on_expire
        self._held: dict[int, Message] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._keys = itertools.count()
        self.bytes = 0

    def hold(self, message: Message) -> bool:
        """Hold the request; False when the holding is full (HOLD_LIMIT
        requests or HOLD_BYTES bytes): the caller answers it at once."""
        if len(self._held) >= HOLD_LIMIT or self.bytes + len(message.data) > HOLD_BYTES:
            return False
        key = next(self._keys)
        self._held[key] = message
        self.bytes += len(message.data)
        self._timers[key] = asyncio.get_running_loop().call_later(self.timeout, self._expire, key)
        return True

    def _release(self, key: int) -> Message | None:
        message = self._held.pop(key, None)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        if message is not None:
            self.bytes -= len(message.data)
        return message

    def answerable(self, view: SwitchView) -> list[bytes]:
        """The replies for the held requests the view can answer now; those
        requests are no longer held."""
        replies = []
        for key, message in list(self._held.items()):
            result = answer(view, message)
            if not result.unanswered:
                self._release(key)
                replies += result.replies
        return replies

    def clear(self) -> None:
        """The master's connection ended: its requests die with it."""
        for key in list(self._held):
            self._release(key)

    def __len__(self) -> int:
        return len(self._held)

    def _expire(self, key: int) -> None:
        message = self._release(key)
        on_expire = self.on_expire()
        if message is not None and on_expire is not None:
            on_expire(message)
