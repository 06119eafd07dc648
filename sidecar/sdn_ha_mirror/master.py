"""The master link: one live OpenFlow session to the master controller per
switch session, fed with copies of the switch's asynchronous messages.

The master's requests are answered from the switch's view (the replies the
switch gave the backup), its writes are swallowed and audited, and what it
asks that nothing is cached for waits in the holding. Copies wait in a
bounded queue; a slow or absent master only costs copies, counted.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass

from .accounting import MirrorQueue
from .holding import Holding
from .identity import Bindings
from .openflow import OFPT, Framer, FramingError, Message, pack
from .shadow import SwitchView, answer, unavailable

log = logging.getLogger("sdn_ha_mirror")

MASTER_WRITE_CHUNK = 1 << 16
MASTER_SNDBUF = 1 << 18
# Copies wait this long to be written to the master together: one write per
# batch instead of one per switch read, which the primary path pays for in CPU.
COPY_BATCH_SECONDS = 0.002


@dataclass
class Settings:
    primary: tuple[str, int] = ("127.0.0.1", 16653)
    master: tuple[str, int] | None = None
    queue_limit: int = 1 << 20
    master_retry_max: float = 5.0
    # A master request nothing is cached for waits this long for the
    # backup's next reply of that kind, then gets an ERROR.
    hold_timeout: float = 5.0
    # A switch that answers nothing for this long is gone (TCP keepalive and
    # TCP_USER_TIMEOUT): its session is closed, and HAProxy's with it.
    switch_timeout: float = 15.0
    # Which datapath ids each switch address may claim (identity.py); None:
    # any (no --bindings).
    bindings: Bindings | None = None


class MasterLink:
    def __init__(self, settings: Settings, view: SwitchView, queue: MirrorQueue, label: str):
        self.settings = settings
        self.view = view
        self.queue = queue
        self.label = label
        self.view_ready = asyncio.Event()
        self.ready = asyncio.Event()  # connected: copies go out
        # Until the first connection attempt ends, copies are queued for it
        # (bounded by the queue); after a failure they are dropped and counted.
        self.opening = True
        self.writer: asyncio.StreamWriter | None = None
        self.holding = Holding(settings.hold_timeout, self._expired)
        self._copies = asyncio.Event()  # wakes the writer toward the master

    @property
    def deliverable(self) -> bool:
        """Copies are queued while the master is connected, or while the
        first connection is being made (the view is ready); otherwise they
        are dropped and counted."""
        return self.ready.is_set() or (self.opening and self.view_ready.is_set())

    def copies_queued(self) -> None:
        if self.ready.is_set() and self.queue.queued_bytes >= MASTER_WRITE_CHUNK:
            self._write_copies()
        self._copies.set()

    def view_changed(self) -> None:
        """The switch sent a reply the view keeps: answer what waits for it."""
        if len(self.holding):
            self._send(self.holding.answerable(self.view))
        if self.view.ready and not self.view_ready.is_set():
            self.view_ready.set()

    async def run(self) -> None:
        await self.view_ready.wait()
        delay = 0.1
        while True:
            try:
                reader, writer = await asyncio.open_connection(*self.settings.master)
            except OSError:
                if self.opening:
                    self.opening = False
                    self.queue.discard()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.master_retry_max)
                continue
            delay = 0.1
            sock = writer.get_extra_info("socket")
            if sock is not None:
                # Bound what a stalled master can hold in the kernel; the queue
                # above is where copies wait, counted, and are dropped.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, MASTER_SNDBUF)
            self.writer = writer
            writer.write(pack(self.view.version, OFPT.HELLO, 0))
            self.ready.set()
            self.opening = False
            copier = asyncio.get_running_loop().create_task(self._copy(writer))
            try:
                await self._answer(reader, writer)
            except (ConnectionError, OSError) as exc:
                log.info("switch %s: master connection lost: %s", self.label, exc)
            except Exception:  # a bug must not end the link for good: log it, reconnect
                log.exception("switch %s: master link failed", self.label)
                await asyncio.sleep(self.settings.master_retry_max)
            finally:
                copier.cancel()
                self.ready.clear()
                self.writer = None
                self.holding.clear()
                self.queue.discard()
                writer.close()
            log.info("switch %s: master went away; reconnecting", self.label)

    def flush(self) -> None:
        """Hand every queued copy to the master's transport, past its
        high-water mark (bounded by the queue's limit)."""
        if self.ready.is_set() and self.writer is not None and not self.writer.is_closing():
            while len(self.queue):
                self.writer.transport.write(self.queue.take(MASTER_WRITE_CHUNK))

    def close(self) -> None:
        """After flush(): what could not be handed over is dropped, counted."""
        self.queue.discard()
        if self.writer is not None:
            self.writer.close()

    async def _copy(self, writer: asyncio.StreamWriter) -> None:
        """Write the copies that trickle in every COPY_BATCH_SECONDS, as one
        write; a full chunk is written at once by copies_queued."""
        while True:
            await self._copies.wait()
            await asyncio.sleep(COPY_BATCH_SECONDS)
            self._copies.clear()
            while len(self.queue):
                self._write_copies()
                await writer.drain()

    def _write_copies(self) -> None:
        """Move whole queued copies into the master's socket buffer, as long
        as it stays under its high-water mark."""
        transport = self.writer.transport
        # At or under the high-water mark the transport is not paused, so the
        # copier's drain() would not wait: keep writing until it would.
        high = transport.get_write_buffer_limits()[1]
        while len(self.queue) and transport.get_write_buffer_size() <= high:
            transport.write(self.queue.take(MASTER_WRITE_CHUNK))

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = Framer()
        while data := await reader.read(65536):
            try:
                messages = framer.feed(data)
            except FramingError as exc:
                log.warning("master sent bytes that are not OpenFlow: %s; reconnecting", exc)
                return
            for message in messages:
                result = answer(self.view, message)
                if result.swallowed:
                    self.queue.counters.swallowed_messages += 1
                    log.info("audit: master would have sent %s (xid %d)", OFPT(message.type).name, message.xid)
                elif result.unanswered:
                    self.holding.hold(message)
                for reply in result.replies:
                    writer.write(reply)
            await writer.drain()

    def _expired(self, message: Message) -> None:
        self.queue.counters.unanswered_messages += 1
        kind = OFPT(message.type).name if message.type in OFPT._value2member_map_ else message.type
        log.info("switch %s: nothing cached for the master's %s (xid %d); sent an error", self.label, kind, message.xid)
        self._send([unavailable(self.view, message)])

    def _send(self, replies: list[bytes]) -> None:
        if self.writer is not None and not self.writer.is_closing():
            for reply in replies:
                self.writer.write(reply)
