"""Master requests that nothing is cached for yet.

Each waits for the backup's next reply of its kind (say, a stats kind the
backup has not polled yet) and is answered from it; after `timeout` seconds
it is answered with an OpenFlow error instead. Nothing the master asks ever
reaches a switch.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

from .openflow import Message
from .shadow import SwitchView, answer


class Holding:
    def __init__(self, timeout: float, on_expire: Callable[[Message], None]):
        self.timeout = timeout
        self.on_expire = on_expire
        self._held: dict[int, Message] = {}
        self._keys = itertools.count()

    def hold(self, message: Message) -> None:
        key = next(self._keys)
        self._held[key] = message
        asyncio.get_running_loop().call_later(self.timeout, self._expire, key)

    def answerable(self, view: SwitchView) -> list[bytes]:
        """The replies for the held requests the view can answer now; those
        requests are no longer held."""
        replies = []
        for key, message in list(self._held.items()):
            result = answer(view, message)
            if not result.unanswered:
                del self._held[key]
                replies += result.replies
        return replies

    def clear(self) -> None:
        """The master's connection ended: its requests die with it."""
        self._held.clear()

    def __len__(self) -> int:
        return len(self._held)

    def _expire(self, key: int) -> None:
        message = self._held.pop(key, None)
        if message is not None:
            self.on_expire(message)
