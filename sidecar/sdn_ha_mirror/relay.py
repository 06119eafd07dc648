"""One switch session: relay it byte for byte to the primary path, and let
the tap copy its asynchronous messages to the master.

The relay is two asyncio protocols wired back to back: bytes received on
one connection are written to the other before anything looks at them, and
TCP flow control passes straight through (a slow reader pauses the other
side's reads). The tap (tap.py) then walks the message headers and feeds
the master link (master.py).

The primary path never waits for the master: copies go through a bounded
queue, and a slow or dead master only costs dropped copies.

Switches share the event loop fairly: a connection's bytes are inspected
for at most INSPECT_BUDGET seconds at a time. What is left waits for the
loop's next turn, and the connection is not read again until it is done,
so a switch that floods the relay slows only itself.

With bindings (identity.py), every FEATURES_REPLY in the switch's
handshake must claim a datapath id bound to the switch's address (the same
one each time): the session is refused before the controller has any other
claim whole.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import logging
import socket
import ssl
import struct
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import ClassVar

from .identity import Gate
from .master import Settings
from .openflow import FramingError
from .tap import Tap

__all__ = ["Settings", "SwitchSession", "proxy_v2_header", "start_server"]

log = logging.getLogger("sdn_ha_mirror")

PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2_header(source: tuple[str, int], destination: tuple[str, int]) -> bytes:
    """A PROXY protocol v2 header for a TCP/IPv4 connection, so HAProxy's
    `balance source` still sees the switch's own address."""
    src, dst = ipaddress.IPv4Address(source[0]), ipaddress.IPv4Address(destination[0])
    addresses = src.packed + dst.packed + struct.pack("!HH", source[1], destination[1])
    return PROXY_V2_SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", len(addresses)) + addresses


def keep_alive(sock: socket.socket, timeout: float) -> None:
    """Probe an idle peer and give up on it after about `timeout` seconds."""
    idle = max(1, int(timeout / 3))
    interval = max(1, int(timeout / 6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, max(1, int((timeout - idle) / interval)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(timeout * 1000))


# Seconds of inspection a connection gets at a time. It inspects in slices
# sized, from what the last slice cost, to take a quarter of that: a stream
# of small messages costs more per byte than one of large ones.
INSPECT_BUDGET = 0.001
SLICE_MIN, SLICE_MAX = 1 << 8, 1 << 16
TIMED = 1 << 10  # reads this long or longer are timed, to size the slices
# Bytes a switch may send before its session is open (Python before 3.11.5
# delivers them although reading is paused); past it, the session is closed.
EARLY_LIMIT = 1 << 18


class _Pipe(asyncio.Protocol):
    """One connection of the relayed pair. What it receives is written to
    its peer first, then inspected; backpressure on the peer, or bytes not
    inspected yet, pause it."""

    name = "primary path"

    def __init__(self, session: SwitchSession, inspect: Callable[[bytes], None]):
        self.session = session
        self.inspect = inspect
        self.transport: asyncio.Transport | None = None
        self.peer: _Pipe | None = None
        self.early: list[bytes] = []
        self.early_bytes = 0
        self.reads = 0  # reads so far
        self.backlog: deque[memoryview] = deque()  # forwarded, not inspected yet
        self.holds: set[str] = set()  # why reading is paused
        self.slice = SLICE_MAX >> 3  # bytes inspected between two looks at the clock

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def hold(self, reason: str) -> None:
        if not self.holds and self.transport is not None:
            self.transport.pause_reading()
        self.holds.add(reason)

    def release(self, reason: str) -> None:
        if reason not in self.holds:
            return
        self.holds.discard(reason)
        if not self.holds and self.transport is not None and not self.session.closed.is_set():
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        self.reads += 1  # what the idle check looks at (cheaper than the clock)
        if self.peer.transport is None or (self.name == "switch" and not self.session.header_sent):
            # Python < 3.11.5 (Debian 12 has 3.11.2) may deliver bytes although
            # reading is paused; hold them until the primary path is open and
            # has the PROXY header, which must come first.
            self.early.append(data)
            self.early_bytes += len(data)
            self.transport.pause_reading()
            if self.early_bytes > EARLY_LIMIT:
                log.warning(
                    "switch %s sent %d bytes before its session was open; closed", self.session.peer, self.early_bytes
                )
                self.session.close()
            return
        self.forward(data)

    def forward(self, data: bytes) -> None:
        self.peer.transport.write(data)
        size = len(data)
        if not self.backlog and size <= self.slice:
            # One slice's worth, nothing waiting before it: inspected at once
            # (what a slice costs is what the budget allows).
            try:
                if size < TIMED:
                    self.inspect(data)
                else:
                    start = time.perf_counter()
                    self.inspect(data)
                    self.resize(size, time.perf_counter() - start)
            except FramingError as exc:
                self.refuse(exc)
            return
        self.backlog.append(memoryview(data))
        if len(self.backlog) == 1:
            self.inspect_some()

    def resize(self, size: int, spent: float) -> None:
        """Aim the next slice at a quarter of the budget, from what `size`
        bytes just cost."""
        aim = size * INSPECT_BUDGET / (4 * max(spent, 1e-6))
        self.slice = int(min(max(aim, SLICE_MIN), SLICE_MAX))

    def refuse(self, exc: FramingError) -> None:
        log.warning("%s sent bytes that are not OpenFlow: %s; closing the session", self.name, exc)
        self.backlog.clear()
        self.session.close()

    def inspect_some(self) -> None:
        """Inspect the backlog for INSPECT_BUDGET at most; the rest waits for
        the loop's next turn, and the connection is not read meanwhile."""
        if self.session.closed.is_set():
            self.backlog.clear()
            return
        clock = time.perf_counter
        now = clock()
        until = now + INSPECT_BUDGET
        backlog = self.backlog
        try:
            while backlog:
                data, size = backlog[0], self.slice
                if len(data) > size:
                    backlog[0] = data[size:]
                    data = data[:size]
                else:
                    backlog.popleft()
                self.inspect(data)
                then, now = now, clock()
                if len(data) >= TIMED:
                    self.resize(len(data), now - then)
                if backlog and now >= until:
                    self.hold("inspecting")
                    asyncio.get_running_loop().call_soon(self.inspect_some)
                    return
        except FramingError as exc:
            self.refuse(exc)
            return
        except Exception:  # a bug must close this session, not leave it paused
            log.exception("%s: inspecting its bytes failed; closing the session", self.name)
            self.backlog.clear()
            self.session.close()
            return
        self.release("inspecting")

    def pause_writing(self) -> None:
        if self.peer is not None:
            self.peer.hold("peer busy")

    def resume_writing(self) -> None:
        if self.peer is not None:
            self.peer.release("peer busy")

    def eof_received(self) -> bool:
        self.session.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.session.close()
        # The last callback: no cycle may keep the pair until the cycle collector runs.
        self.peer = self.transport = None
        self.backlog.clear()


class _SwitchPipe(_Pipe):
    """The switch's side. With bindings, a Gate (identity.py) checks its
    stream until the controller's handshake is over, and a refused claim
    closes the session before the controller has it whole."""

    name = "switch"

    def __init__(self, session: SwitchSession, inspect: Callable[[bytes], None]):
        super().__init__(session, inspect)
        self.gate: Gate | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.session.start()
        bindings = self.session.settings.bindings
        if bindings is not None and self.session.peer is not None:
            self.gate = Gate(bindings, self.session.peer[0], str(self.session.peer))

    def forward(self, data: bytes) -> None:
        if self.gate is not None:
            if not self.gate.feed(data):
                self.session.close()
                return
            if self.gate.over:
                self.gate = None
        super().forward(data)


class SwitchSession:
    """Everything about one relayed switch connection."""

    _ids = itertools.count(1)
    live = 0  # relayed sessions open in this process
    refused = 0  # sessions closed at once: max_sessions were open
    timed_out: ClassVar[Counter] = Counter()  # sessions closed by a timeout, by phase: handshake, idle
    _logged: ClassVar[dict[str, float]] = {}  # when each kind of warning was last logged

    def __init__(
        self,
        settings: Settings,
        on_open: Callable[[SwitchSession], None] | None = None,
        on_close: Callable[[SwitchSession], None] | None = None,
    ):
        self.id = next(self._ids)
        self.settings = settings
        self.on_open, self.on_close = on_open, on_close
        self.peer: tuple[str, int] | None = None
        self.tap = Tap(settings, "unknown")
        self.switch = _SwitchPipe(self, self.tap.from_switch)
        self.primary = _Pipe(self, self.tap.from_controller)
        self.switch.peer, self.primary.peer = self.primary, self.switch
        self.closed = asyncio.Event()
        self.header_sent = False  # the PROXY header is on the primary path: the switch's bytes may follow
        self.counted = False  # one of SwitchSession.live
        self._tasks: list[asyncio.Task] = []
        self._timers: list[asyncio.TimerHandle] = []
        self.last_heard = 0.0  # the loop's time when the switch was last seen to send bytes
        self.reads_seen = 0  # the switch pipe's reads then

    @property
    def queue(self):
        return self.tap.queue

    @property
    def view(self):
        return self.tap.view

    @property
    def master_ready(self) -> asyncio.Event:
        return self.tap.master_ready

    def start(self) -> None:
        """The switch connected: open the primary path, then let bytes flow."""
        transport = self.switch.transport
        self.switch.hold("opening")  # until the primary path is open and has the PROXY header
        self.peer = transport.get_extra_info("peername")[:2]
        if SwitchSession.live >= self.settings.max_sessions:
            SwitchSession.refused += 1
            self._warn(
                "refused",
                "switch %s: %d sessions open, the most allowed; closed (%d so far)",
                self.peer,
                SwitchSession.live,
                SwitchSession.refused,
            )
            self.closed.set()
            transport.close()
            self._let_go()
            return
        SwitchSession.live += 1
        self.counted = True
        self.tap.label = str(self.peer)
        if self.tap.link:
            self.tap.link.label = self.tap.label
        sock = transport.get_extra_info("socket")
        if sock is not None:
            keep_alive(sock, self.settings.switch_timeout)
        if self.on_open:
            self.on_open(self)
        loop = asyncio.get_running_loop()
        self.last_heard = loop.time()
        self._timers = [
            loop.call_later(self.settings.handshake_timeout, self._handshake_over),
            loop.call_later(self.settings.idle_timeout, self._still_heard),
        ]
        self._tasks.append(loop.create_task(self._open_primary()))

    @staticmethod
    def _warn(kind: str, *args) -> None:
        """A warning that hostile peers can repeat: one line a second of each
        kind, however many come (each is counted in the metrics)."""
        now = time.monotonic()
        if now - SwitchSession._logged.get(kind, -1.0) >= 1.0:
            SwitchSession._logged[kind] = now
            log.warning(*args)

    def _timed_out(self, phase: str, why: str) -> None:
        SwitchSession.timed_out[phase] += 1
        self._warn(phase, "switch %s: %s; closed (%d so far)", self.peer, why, SwitchSession.timed_out[phase])
        self.close()

    def _handshake_over(self) -> None:
        """The switch has handshake_timeout to show who it is (its features
        and ports), whether it sends nothing or a byte at a time."""
        if not self.tap.view.ready:
            self._timed_out("handshake", f"no OpenFlow handshake in {self.settings.handshake_timeout:g} s")

    def _still_heard(self) -> None:
        """A switch answers the controller's echoes: one silent for
        idle_timeout is gone (TCP keepalive only finds dead hosts). Looked
        at every idle_timeout, so a silent switch goes within twice that."""
        loop = asyncio.get_running_loop()
        switch = self.switch
        if switch is not None and (switch.holds or switch.reads != self.reads_seen):
            # It sent something since the last look, or it was not read
            # meanwhile (its silence is ours).
            self.last_heard, self.reads_seen = loop.time(), switch.reads
        silent = loop.time() - self.last_heard
        if silent >= self.settings.idle_timeout:
            self._timed_out("idle", f"silent for {silent:.0f} s")
        elif not self.closed.is_set():
            self._timers[1] = loop.call_later(self.settings.idle_timeout - silent, self._still_heard)

    async def _open_primary(self) -> None:
        local = self.switch.transport.get_extra_info("sockname")[:2]
        primary = self.primary
        try:
            await asyncio.wait_for(
                asyncio.get_running_loop().create_connection(lambda: primary, *self.settings.primary),
                CONNECT_TIMEOUT,
            )
        except (OSError, TimeoutError) as exc:
            log.warning("switch %s: primary path %s unreachable: %r", self.peer, self.settings.primary, exc)
            self.close()
            return
        if self.closed.is_set():
            if primary.transport is not None:
                primary.transport.close()
            return
        primary.transport.write(proxy_v2_header(self.peer, local))
        self.header_sent = True
        switch, early = self.switch, self.switch.early
        while early and not self.closed.is_set():
            switch.forward(early.pop(0))
        if not self.closed.is_set():
            switch.release("opening")  # reading resumes unless the early bytes left holds of their own
            self.tap.start()

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        if self.counted:
            SwitchSession.live -= 1
        for pipe in (self.switch, self.primary):
            if pipe.transport is not None:
                pipe.transport.close()
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        for timer in self._timers:
            timer.cancel()
        if self.on_close:
            self.on_close(self)
        self._let_go()

    def _let_go(self) -> None:
        """The pipes point at the session, and the tap's scanners at the tap:
        the session lets go of them all (the transports hold the pipes until
        their last callback), so reference counting alone frees it."""
        self.tap.close()
        self.switch = self.primary = None

    async def wait_closed(self) -> None:
        await self.closed.wait()


TLS_HANDSHAKE_TIMEOUT = 10.0  # seconds a switch has to finish its TLS handshake
CONNECT_TIMEOUT = 5.0  # seconds HAProxy has to accept the primary path


async def start_server(
    settings: Settings,
    on_open: Callable[[SwitchSession], None] | None = None,
    on_close: Callable[[SwitchSession], None] | None = None,
    tls: ssl.SSLContext | None = None,
    **where,
) -> asyncio.Server:
    """Accept switches (on `sock=` or `host=`, `port=`), one SwitchSession
    each; with `tls`, over TLS (a session starts once its handshake is over)."""
    loop = asyncio.get_running_loop()
    if tls is not None:
        where.update(ssl=tls, ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT)
    return await loop.create_server(lambda: SwitchSession(settings, on_open, on_close).switch, **where)
