"""One switch session seen as two byte streams, whatever delivers them: the
relay's sockets or the kernel capture.

The switch->controller stream is walked header by header: asynchronous
messages are counted and queued for the master in runs, replies update the
switch's view, and every message is counted once as mirrored, filtered or
dropped. The controller->switch stream is only read for the xids of the
backup's requests, so that an ERROR answering one counts as a reply.

Bytes that never arrive whole (the capture missed them, or picked the
stream up mid-flight) are counted as unseen; the scanner then starts again
at the next message boundary the caller found.

Given the switch's address and the settings' bindings (the capture), every
FEATURES_REPLY must claim a datapath id bound to that address, or the
master gets nothing more of the session: the capture sees a copy of every byte a switch sends, also those
the identity gate then drops, and a claim of another switch's id would give
the master a second session for that switch. (The relay checks the stream
itself, before anything goes on.)
"""

from __future__ import annotations

import asyncio
import logging

from .accounting import MirrorQueue
from .master import MasterLink, Settings
from .openflow import ASYNC, OFPT, Message, Route, Scanner, route
from .shadow import SwitchView

log = logging.getLogger("sdn_ha_mirror")

REQUESTS = frozenset(
    {
        OFPT.FEATURES_REQUEST,
        OFPT.GET_CONFIG_REQUEST,
        OFPT.MULTIPART_REQUEST,
        OFPT.BARRIER_REQUEST,
        OFPT.ROLE_REQUEST,
        OFPT.ECHO_REQUEST,
        OFPT.QUEUE_GET_CONFIG_REQUEST,
        OFPT.GET_ASYNC_REQUEST,
    }
)
NOT_REQUESTS = frozenset(range(256)) - REQUESTS
MIRROR_RUN = frozenset(ASYNC)  # always mirrored: counted and copied as runs
# The backup's requests whose xids are remembered, at most (a backup that
# never gets an answer must not grow the set for ever).
PENDING_LIMIT = 4096


class Tap:
    def __init__(self, settings: Settings, label: str, view: SwitchView | None = None, address: str | None = None):
        self.label = label
        self.bindings = settings.bindings if address is not None else None
        self.address = address
        self.refusal = ""  # why the tap closed on an identity it may not claim
        self.queue = MirrorQueue(settings.queue_limit)
        self.view = view or SwitchView()
        self.pending_xids: set[int] = set()
        self.link = MasterLink(settings, self.view, self.queue, label) if settings.master else None
        self._switch = self._switch_scanner()
        self._controller = self._controller_scanner()
        self._task: asyncio.Task | None = None

    def _switch_scanner(self) -> Scanner:
        return Scanner(MIRROR_RUN, self._mirror_run, self._switch_message)

    def _controller_scanner(self) -> Scanner:
        return Scanner(NOT_REQUESTS, _ignore_run, self._controller_request)

    @property
    def counters(self):
        return self.queue.counters

    @property
    def master_ready(self) -> asyncio.Event:
        return self.link.ready if self.link else asyncio.Event()

    def start(self) -> None:
        """Open the master link once the view is ready (at once if it already is)."""
        if self.link and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.link.run())
            self.link.view_changed()

    def adopt(self, view: SwitchView) -> None:
        """Take a view learned elsewhere (the peer LB) for a stream picked up
        mid-flight; what this stream already showed stays."""
        if self.refusal:
            return
        mine = self.view
        mine.version = mine.version or view.version
        mine.features = mine.features or view.features
        mine.config = mine.config or view.config
        mine.multipart = {**view.multipart, **mine.multipart}
        mine.generation += 1
        if self.link:
            self.link.view_changed()

    def close(self) -> None:
        """The session ended: the copies already queued still go to the
        master (the transport flushes them as it closes). The scanners hold
        this tap's methods; they go, so that no cycle keeps the session's
        memory until the cycle collector runs."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self.link:
            self.link.flush()
            self.link.close()
        self._switch = self._controller = _CLOSED

    def from_switch(self, data: bytes) -> None:
        """Bytes of the switch's stream, in order. FramingError: not OpenFlow."""
        self._switch.feed(data)

    def from_controller(self, data: bytes) -> None:
        self._controller.feed(data)

    def switch_gap(self, missing: int) -> None:
        """`missing` bytes of the switch's stream will never arrive: the
        message cut short before them is lost too, and the stream goes on
        at a message boundary."""
        self.queue.counters.unseen_bytes += missing + self._switch.pending
        if self._switch is not _CLOSED:  # a closed tap stays closed (no scanner, no cycle)
            self._switch = self._switch_scanner()

    def controller_gap(self) -> None:
        if self._controller is not _CLOSED:
            self._controller = self._controller_scanner()

    def _controller_request(self, message: Message) -> None:
        if len(self.pending_xids) >= PENDING_LIMIT:
            self.pending_xids.clear()
        self.pending_xids.add(message.xid)

    def _deliverable(self) -> bool:
        return self.link is not None and self.link.deliverable

    def _mirror_run(self, buf: bytes, start: int, end: int, count: int) -> None:
        # No replay: while the master is away, its copies are dropped (and
        # all of a refused session's).
        if self.queue.account_run(buf[start:end], count, deliverable=self._deliverable() and not self.refusal):
            self.link.copies_queued()

    def _switch_message(self, message: Message) -> None:
        if not self.refusal and message.type == OFPT.FEATURES_REPLY:
            self._bound(message)
        if self.refusal:  # counted, never learned nor sent on
            self.queue.account(message, route(message, self.pending_xids), deliverable=False)
            return
        self.view.learn(message)
        decision = route(message, self.pending_xids)
        if decision is Route.CACHE:
            self.pending_xids.discard(message.xid)
            if self.link:
                self.link.view_changed()
        if self.queue.account(message, decision, deliverable=self._deliverable()):
            self.link.copies_queued()

    def _bound(self, message: Message) -> bool:
        """Whether the datapath id a FEATURES_REPLY claims is bound to the
        switch's address (always, without bindings); if not, the master gets
        nothing of this session from now on (its messages are still counted)."""
        if self.bindings is None:
            return True
        data = message.data
        dpid = int.from_bytes(data[8:16], "big") if len(data) >= 16 else None
        if dpid is not None and self.bindings.allows(self.address, dpid):
            return True
        self.bindings.refused += 1
        self.refusal = "claimed datapath id {}, but its address is bound to {}".format(
            "none" if dpid is None else f"{dpid:#x}", self.bindings.bound_to(self.address)
        )
        log.warning("switch %s %s: not mirrored", self.label, self.refusal)
        if self._task is not None:  # the master's session for it, if any, ends
            self._task.cancel()
            self._task = None
        if self.link:
            self.link.close()
        return False


def _ignore_run(buf: bytes, start: int, end: int, count: int) -> None:
    """Replies and asynchronous messages of the primary controller: nothing to note."""


class _Closed:
    """What a closed tap scans with: bytes that still come are not looked at."""

    pending = 0

    def feed(self, data: bytes) -> None:
        pass


_CLOSED = _Closed()
