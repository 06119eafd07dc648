"""One switch session: relay it byte for byte to the primary path, and copy
its asynchronous messages to the master over a shadow session of its own.

The relay is two asyncio protocols wired back to back: bytes received on
one connection are written to the other before anything looks at them, and
TCP flow control passes straight through (a slow reader pauses the other
side's reads). The copy path only walks the message headers; runs of
asynchronous messages go to the master as one slice.

The primary path never waits for the master: copies go through a bounded
queue, and a slow or dead master only costs dropped copies.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from .accounting import MirrorQueue
from .openflow import ASYNC, OFPT, Framer, FramingError, Message, Route, Scanner, pack, route
from .shadow import SwitchView, answer, unavailable

log = logging.getLogger("sdn_ha_mirror")

PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
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
MASTER_WRITE_CHUNK = 1 << 16
MASTER_SNDBUF = 1 << 18
# Copies wait this long to be written to the master together: one write per
# batch instead of one per switch read, which the primary path pays for in CPU.
COPY_BATCH_SECONDS = 0.002


def proxy_v2_header(source: tuple[str, int], destination: tuple[str, int]) -> bytes:
    """A PROXY protocol v2 header for a TCP/IPv4 connection, so HAProxy's
    `balance source` still sees the switch's own address."""
    src, dst = ipaddress.IPv4Address(source[0]), ipaddress.IPv4Address(destination[0])
    addresses = src.packed + dst.packed + struct.pack("!HH", source[1], destination[1])
    return PROXY_V2_SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", len(addresses)) + addresses


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


def keep_alive(sock: socket.socket, timeout: float) -> None:
    """Probe an idle peer and give up on it after about `timeout` seconds."""
    idle = max(1, int(timeout / 3))
    interval = max(1, int(timeout / 6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, max(1, int((timeout - idle) / interval)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(timeout * 1000))


class _Pipe(asyncio.Protocol):
    """One connection of the relayed pair. What it receives is written to
    its peer first, then inspected; backpressure on the peer pauses it."""

    def __init__(self, session: SwitchSession, inspect: Callable[[bytes], None]):
        self.session = session
        self.inspect = inspect
        self.transport: asyncio.Transport | None = None
        self.peer: _Pipe | None = None
        self.early: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.peer.transport is None:
            # Python < 3.11.5 may deliver bytes although connection_made paused
            # reading; hold them until the primary path is open.
            self.early.append(data)
            self.transport.pause_reading()
            return
        self.peer.transport.write(data)
        self.inspect_or_close(data)

    def inspect_or_close(self, data: bytes) -> None:
        try:
            self.inspect(data)
        except FramingError as exc:
            log.warning("%s sent bytes that are not OpenFlow: %s; closing the session", self.name, exc)
            self.session.close()

    def pause_writing(self) -> None:
        self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        self.peer.transport.resume_reading()

    def eof_received(self) -> bool:
        self.session.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.session.close()

    @property
    def name(self) -> str:
        return "switch" if self is self.session.switch else "primary path"


class _SwitchPipe(_Pipe):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.session.start()


class SwitchSession:
    """Everything about one switch connection."""

    _ids = itertools.count(1)

    def __init__(
        self,
        settings: Settings,
        on_open: Callable[[SwitchSession], None] | None = None,
        on_close: Callable[[SwitchSession], None] | None = None,
    ):
        self.id = next(self._ids)
        self.settings = settings
        self.on_open, self.on_close = on_open, on_close
        self.queue = MirrorQueue(settings.queue_limit)
        self.view = SwitchView()
        self.pending_xids: set[int] = set()
        self.switch = _SwitchPipe(self, self._from_switch)
        self.primary = _Pipe(self, self._from_primary)
        self.switch.peer, self.primary.peer = self.primary, self.switch
        self._switch_scanner = Scanner(MIRROR_RUN, self._mirror_run, self._switch_message)
        self._primary_scanner = Scanner(NOT_REQUESTS, _ignore_run, self._primary_request)
        self.peer: tuple[str, int] | None = None
        self.master_writer: asyncio.StreamWriter | None = None
        self.master_ready = asyncio.Event()
        self.view_ready = asyncio.Event()
        self.closed = asyncio.Event()
        self._copies = asyncio.Event()  # wakes the writer toward the master
        self._held: dict[int, Message] = {}  # master requests waiting for the cache
        self._hold_ids = itertools.count()
        self._tasks: list[asyncio.Task] = []

    # -- the primary path ------------------------------------------------
    def start(self) -> None:
        """The switch connected: open the primary path, then let bytes flow."""
        transport = self.switch.transport
        transport.pause_reading()
        self.peer = transport.get_extra_info("peername")[:2]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            keep_alive(sock, self.settings.switch_timeout)
        if self.on_open:
            self.on_open(self)
        self._tasks.append(asyncio.get_running_loop().create_task(self._open_primary()))

    async def _open_primary(self) -> None:
        local = self.switch.transport.get_extra_info("sockname")[:2]
        try:
            await asyncio.get_running_loop().create_connection(lambda: self.primary, *self.settings.primary)
        except OSError as exc:
            log.warning("switch %s: primary path %s unreachable: %s", self.peer, self.settings.primary, exc)
            self.close()
            return
        if self.closed.is_set():
            self.primary.transport.close()
            return
        self.primary.transport.write(proxy_v2_header(self.peer, local))
        for data in self.switch.early:
            self.primary.transport.write(data)
            self.switch.inspect_or_close(data)
        self.switch.early.clear()
        if not self.closed.is_set():
            self.switch.transport.resume_reading()
        if self.settings.master:
            self._tasks.append(asyncio.get_running_loop().create_task(self._master_loop()))

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for pipe in (self.switch, self.primary):
            if pipe.transport is not None:
                pipe.transport.close()
        for task in self._tasks:
            task.cancel()
        if self.master_writer is not None:
            self.master_writer.close()
        if self.on_close:
            self.on_close(self)

    async def wait_closed(self) -> None:
        await self.closed.wait()

    def _from_switch(self, data: bytes) -> None:
        self._switch_scanner.feed(data)

    def _from_primary(self, data: bytes) -> None:
        self._primary_scanner.feed(data)

    def _primary_request(self, message: Message) -> None:
        self.pending_xids.add(message.xid)

    def _mirror_run(self, buf: bytes, start: int, end: int, count: int) -> None:
        # No replay: while the master is away, its copies are dropped.
        if self.queue.account_run(buf[start:end], count, deliverable=self.master_ready.is_set()):
            if self.queue.queued_bytes >= MASTER_WRITE_CHUNK:
                self._write_copies()
            self._copies.set()

    def _switch_message(self, message: Message) -> None:
        self.view.learn(message)
        decision = route(message, self.pending_xids)
        if decision is Route.CACHE:
            self.pending_xids.discard(message.xid)
            if self._held:
                self._answer_held()
        if self.queue.account(message, decision, deliverable=self.master_ready.is_set()):
            self._copies.set()
        if self.view.ready and not self.view_ready.is_set():
            self.view_ready.set()

    # -- the shadow session ---------------------------------------------
    async def _master_loop(self) -> None:
        await self.view_ready.wait()
        delay = 0.1
        while not self.closed.is_set():
            try:
                reader, writer = await asyncio.open_connection(*self.settings.master)
            except OSError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.master_retry_max)
                continue
            delay = 0.1
            sock = writer.get_extra_info("socket")
            if sock is not None:
                # Bound what a stalled master can hold in the kernel; the queue
                # above is where copies wait, counted, and are dropped.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, MASTER_SNDBUF)
            self.master_writer = writer
            writer.write(pack(self.view.version, OFPT.HELLO, 0))
            self.master_ready.set()
            copier = asyncio.get_running_loop().create_task(self._copy_to_master(writer))
            try:
                await self._answer_master(reader, writer)
            except (ConnectionError, OSError) as exc:
                log.info("switch %s: master connection lost: %s", self.peer, exc)
            finally:
                copier.cancel()
                self.master_ready.clear()
                self.master_writer = None
                self._held.clear()
                writer.close()
            log.info("switch %s: master went away; reconnecting", self.peer)

    async def _copy_to_master(self, writer: asyncio.StreamWriter) -> None:
        """Write the copies that trickle in every COPY_BATCH_SECONDS, as one
        write; a full chunk is written at once by _mirror_run."""
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
        transport = self.master_writer.transport
        # At or under the high-water mark the transport is not paused, so the
        # copier's drain() would not wait: keep writing until it would.
        high = transport.get_write_buffer_limits()[1]
        while len(self.queue) and transport.get_write_buffer_size() <= high:
            transport.write(self.queue.take(MASTER_WRITE_CHUNK))

    async def _answer_master(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
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
                    self._hold(message)
                for reply in result.replies:
                    writer.write(reply)
            await writer.drain()

    def _hold(self, message: Message) -> None:
        """Nothing is cached for this request yet: wait for the backup's next
        reply of the same kind, or answer with an ERROR after hold_timeout."""
        key = next(self._hold_ids)
        self._held[key] = message
        asyncio.get_running_loop().call_later(self.settings.hold_timeout, self._expire, key)

    def _answer_held(self) -> None:
        for key, message in list(self._held.items()):
            result = answer(self.view, message)
            if not result.unanswered:
                del self._held[key]
                self._to_master(result.replies)

    def _expire(self, key: int) -> None:
        message = self._held.pop(key, None)
        if message is not None:
            self.queue.counters.unanswered_messages += 1
            kind = OFPT(message.type).name if message.type in OFPT._value2member_map_ else message.type
            log.info(
                "switch %s: nothing cached for the master's %s (xid %d); sent an error", self.peer, kind, message.xid
            )
            self._to_master([unavailable(self.view, message)])

    def _to_master(self, replies: list[bytes]) -> None:
        if self.master_writer is not None and not self.master_writer.is_closing():
            for reply in replies:
                self.master_writer.write(reply)


def _ignore_run(buf: bytes, start: int, end: int, count: int) -> None:
    """Replies and asynchronous messages of the primary controller: nothing to note."""


async def start_server(
    settings: Settings,
    on_open: Callable[[SwitchSession], None] | None = None,
    on_close: Callable[[SwitchSession], None] | None = None,
    **where,
) -> asyncio.Server:
    """Accept switches (on `sock=` or `host=`, `port=`), one SwitchSession each."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: SwitchSession(settings, on_open, on_close).switch, **where)
