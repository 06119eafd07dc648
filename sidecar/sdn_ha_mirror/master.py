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
from collections import Counter
from dataclasses import dataclass, field

from .accounting import MirrorQueue
from .holding import Holding
from .identity import Bindings
from .openflow import OFPT, Framer, FramingError, Message, pack, type_name
from .shadow import SwitchView, answer, unavailable

log = logging.getLogger("sdn_ha_mirror")

MASTER_WRITE_CHUNK = 1 << 16
# Reconnects to the master back off from RETRY_MIN up to Settings'
# master_retry_max, and start over only after a session that lasted
# STABLE_SECONDS: a master that accepts and closes at once is not a busy loop.
RETRY_MIN = 0.1
STABLE_SECONDS = 10.0
CONNECT_TIMEOUT = 5.0
# A master that stops in the middle of a message for this long is gone.
PARTIAL_TIMEOUT = 10.0
# Audit lines of the master's would-be writes, per switch session and second
# at most; the rest are summed up in one line (and every one is counted).
AUDIT_LINES_PER_SECOND = 10
MASTER_SNDBUF = 1 << 18
# Copies wait this long to be written to the master together: one write per
# batch instead of one per switch read, which the primary path pays for in CPU.
COPY_BATCH_SECONDS = 0.002


class Pace:
    """Connects to the master, at most `rate` a second after a burst of
    rate / 10, at least 1 (a generic cell rate: each connect books the next
    slot, and a session that ends while waiting gives its slot back).

    After an LB failover every switch reconnects at once, and each session's
    master link would open as soon as its view is ready: hundreds of
    handshakes and provisionings for the master in the same second as the
    backups'. Paced, the master catches up behind the backups instead of
    beside them; its copies wait in each link's queue meanwhile. 0: unpaced."""

    def __init__(self, rate: float = 0.0) -> None:
        if not 0 <= rate < float("inf"):
            raise ValueError(f"a connect rate must be finite and at least 0, not {rate}")
        self.rate = rate
        self.burst = max(1.0, rate / 10)
        self.booked = 0.0  # loop time: when the last booked slot ends
        self.waiting = 0  # links waiting for their slot now

    def delay(self, now: float) -> float:
        """Book the next slot; how long until it starts."""
        if not self.rate:
            return 0.0
        self.booked = max(self.booked, now) + 1 / self.rate
        wait = self.booked - now - self.burst / self.rate
        return wait if wait > 1e-6 else 0.0  # float error on a large clock is no wait

    async def turn(self) -> None:
        loop = asyncio.get_running_loop()
        wait = self.delay(loop.time())
        if wait:
            self.waiting += 1
            try:
                await asyncio.sleep(wait)
            except asyncio.CancelledError:
                # The session ended while waiting: its slot goes to the next.
                self.booked = max(self.booked - 1 / self.rate, loop.time())
                raise
            finally:
                self.waiting -= 1


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
    # A relayed switch must finish its OpenFlow handshake (features and
    # ports) this soon, and is gone once silent this long.
    handshake_timeout: float = 30.0
    idle_timeout: float = 60.0
    # Which datapath ids each switch address may claim (identity.py); None:
    # any (no --bindings).
    bindings: Bindings | None = None
    # Relayed switch sessions at once, at most (each holds three sockets:
    # the switch, the primary path, the master); past it, a new one is
    # closed at once, counted.
    max_sessions: int = 4096
    # Connects to the master a second, across every link (Pace); 0: unpaced.
    master_connect_rate: float = 0.0
    pace: Pace = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.pace = Pace(self.master_connect_rate)


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
        self._audit_since = 0.0
        self._audit_lines = 0
        self._audit_quiet: Counter = Counter()  # writes not logged in this second, by type
        self.connects = 0  # connections to the master that opened

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
        loop = asyncio.get_running_loop()
        delay = RETRY_MIN
        while True:
            await self.settings.pace.turn()
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(*self.settings.master), CONNECT_TIMEOUT)
            except (OSError, TimeoutError):
                if self.opening:
                    self.opening = False
                    self.queue.discard()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.master_retry_max)
                continue
            opened = loop.time()
            self.connects += 1
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
            copier.add_done_callback(self._copier_done)
            try:
                await self._answer(reader, writer)
            except (ConnectionError, OSError) as exc:
                log.info("switch %s: master connection lost: %s", self.label, exc)
                # The reader keeps this exception, whose traceback holds this
                # frame and so the reader: a cycle that only the cycle
                # collector would free (Python 3.12 and later build it).
                exc.__traceback__ = None
            except TimeoutError:
                log.warning("switch %s: the master stopped in a message for %.0f s", self.label, PARTIAL_TIMEOUT)
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
            if loop.time() - opened >= STABLE_SECONDS:
                delay = RETRY_MIN
            log.info("switch %s: master went away; reconnecting in %.1f s", self.label, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings.master_retry_max)

    def _copier_done(self, copier: asyncio.Task) -> None:
        """A copier that failed ends the connection (the link reconnects)
        rather than leave the master connected and fed nothing."""
        if copier.cancelled() or copier.exception() is None:
            return
        log.info("switch %s: copies to the master failed: %r; reconnecting", self.label, copier.exception())
        if self.writer is not None:
            self.writer.close()

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
        # No timeout between messages (a quiet master is fine); within one, PARTIAL_TIMEOUT.
        while data := await asyncio.wait_for(reader.read(65536), PARTIAL_TIMEOUT if framer.pending else None):
            try:
                messages = framer.feed(data)
            except FramingError as exc:
                log.warning("master sent bytes that are not OpenFlow: %s; reconnecting", exc)
                return
            for message in messages:
                result = answer(self.view, message)
                if result.swallowed:
                    self.queue.counters.swallowed_messages += 1
                    self._audit(message)
                elif result.unanswered and not self.holding.hold(message):
                    self._expired(message)  # the holding is full: an error at once
                for reply in result.replies:
                    writer.write(reply)
            await writer.drain()

    def _audit(self, message: Message) -> None:
        """Log the master's would-be write, AUDIT_LINES_PER_SECOND at most;
        the ones past that are summed up in one line when the second ends,
        so that the log still accounts for every one."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now - self._audit_since >= 1.0:
            self._audit_flush()
            self._audit_since, self._audit_lines = now, 0
        if self._audit_lines < AUDIT_LINES_PER_SECOND:
            self._audit_lines += 1
            log.info("audit: master would have sent %s (xid %d)", type_name(message.type), message.xid)
            return
        if not self._audit_quiet:
            loop.call_later(max(0.0, self._audit_since + 1.0 - now), self._audit_flush)
        self._audit_quiet[type_name(message.type)] += 1

    def _audit_flush(self) -> None:
        if self._audit_quiet:
            kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self._audit_quiet.items()))
            log.info(
                "audit: master would have sent %d more writes (%s) in that second, not logged each (switch %s)",
                sum(self._audit_quiet.values()),
                kinds,
                self.label,
            )
            self._audit_quiet.clear()

    def _expired(self, message: Message) -> None:
        self.queue.counters.unanswered_messages += 1
        log.info(
            "switch %s: nothing cached for the master's %s (xid %d); sent an error",
            self.label,
            type_name(message.type),
            message.xid,
        )
        self._send([unavailable(self.view, message)])

    def _send(self, replies: list[bytes]) -> None:
        if self.writer is not None and not self.writer.is_closing():
            for reply in replies:
                self.writer.write(reply)
