"""One switch session: relay it byte for byte to the primary path, and let
the tap copy its asynchronous messages to the master.

The relay is two asyncio protocols wired back to back: bytes received on
one connection are written to the other before anything looks at them, and
TCP flow control passes straight through (a slow reader pauses the other
side's reads). The tap (tap.py) then walks the message headers and feeds
the master link (master.py).

The primary path never waits for the master: copies go through a bounded
queue, and a slow or dead master only costs dropped copies.

With bindings (identity.py), a switch's bytes go on in whole messages,
and every FEATURES_REPLY must claim a datapath id bound to the switch's
address (the same one each time): the session is refused before the
controller sees any other claim.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import logging
import socket
import struct
from collections.abc import Callable

from .master import Settings
from .openflow import OFPT, FramingError
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
        if self.peer.transport is None or (self is self.session.switch and not self.session.header_sent):
            # Python < 3.11.5 (Debian 12 has 3.11.2) may deliver bytes although
            # reading is paused; hold them until the primary path is open and
            # has the PROXY header, which must come first.
            self.early.append(data)
            self.transport.pause_reading()
            return
        self.forward(data)

    def forward(self, data: bytes) -> None:
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


GATE_LIMIT = 1 << 16  # bytes a switch may send before its FEATURES_REPLY


class _SwitchPipe(_Pipe):
    """The switch's side. With bindings, its stream goes on in whole
    messages (a trailing partial message waits for the rest) until the
    controller's handshake is over, so that every FEATURES_REPLY is checked
    before the controller sees it: each must claim a datapath id bound to
    the switch's address, the same one each time (a controller in its
    handshake takes the last one it got). The handshake is over, for
    os-ken and so Faucet, with the first FEATURES_REPLY in OpenFlow 1.0-1.2
    and with the last part of the switch's PORT_DESC reply from 1.3 on;
    after it a FEATURES_REPLY is ignored, and the relay is byte for byte."""

    def __init__(self, session: SwitchSession, inspect: Callable[[bytes], None]):
        super().__init__(session, inspect)
        self.gate: bytearray | None = bytearray() if session.settings.bindings is not None else None
        self.datapath_id: int | None = None  # the id the switch proved
        self.unproven_bytes = 0  # sent before its FEATURES_REPLY

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.session.start()

    def forward(self, data: bytes) -> None:
        if self.gate is None:
            super().forward(data)
            return
        gate = self.gate
        gate += data
        offset, size = 0, len(gate)
        while size - offset >= 8:
            length = int.from_bytes(gate[offset + 2 : offset + 4], "big")
            if length < 8:
                log.warning("switch %s sent bytes that are not OpenFlow; closing the session", self.session.peer)
                self.session.close()
                return
            if size - offset < length:
                break
            kind = gate[offset + 1]
            if kind == OFPT.FEATURES_REPLY and not self._proven(bytes(gate[offset : offset + length])):
                # What came before the claim goes on; the claim and all after it never do.
                if offset:
                    super().forward(bytes(gate[:offset]))
                self.session.close()
                return
            offset += length
            if self.datapath_id is not None and self._handshake_over(gate, offset - length, length, kind):
                self.gate = None
                super().forward(bytes(gate))
                return
        if offset:
            whole = bytes(gate[:offset])
            del gate[:offset]
            if self.datapath_id is None:
                self.unproven_bytes += offset
            super().forward(whole)
        if self.datapath_id is None and self.unproven_bytes > GATE_LIMIT and not self.session.closed.is_set():
            log.warning(
                "switch %s sent %d bytes and no FEATURES_REPLY; closing", self.session.peer, self.unproven_bytes
            )
            self.session.close()

    @staticmethod
    def _handshake_over(gate: bytearray, start: int, length: int, kind: int) -> bool:
        """Whether the message at `start` ends the controller's handshake
        (the switch's id already proven)."""
        if gate[start] < 4:  # OpenFlow 1.0-1.2: the features carried the ports
            return kind == OFPT.FEATURES_REPLY
        # ofp_multipart_reply: type PORT_DESC (13), and not OFPMPF_REPLY_MORE
        if kind != OFPT.MULTIPART_REPLY or length < 16:
            return False
        return gate[start + 8 : start + 10] == b"\x00\x0d" and not gate[start + 11] & 1

    def _proven(self, message: bytes) -> bool:
        """Whether the datapath id this FEATURES_REPLY claims is bound to the
        switch's address and, after the first, the one it proved; if not,
        the claim is counted and logged (the caller closes the session)."""
        bindings, address = self.session.settings.bindings, self.session.peer[0]
        dpid = int.from_bytes(message[8:16], "big") if len(message) >= 16 else None
        if dpid is not None and bindings.allows(address, dpid) and self.datapath_id in (None, dpid):
            self.datapath_id = dpid
            return True
        bindings.refused += 1
        log.warning(
            "switch %s claimed datapath id %s, but its address is bound to %s%s: session refused",
            self.session.peer,
            "none" if dpid is None else f"{dpid:#x}",
            bindings.bound_to(address),
            "" if self.datapath_id is None else f" and it proved {self.datapath_id:#x}",
        )
        return False


class SwitchSession:
    """Everything about one relayed switch connection."""

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
        self.peer: tuple[str, int] | None = None
        self.tap = Tap(settings, "unknown")
        self.switch = _SwitchPipe(self, self.tap.from_switch)
        self.primary = _Pipe(self, self.tap.from_controller)
        self.switch.peer, self.primary.peer = self.primary, self.switch
        self.closed = asyncio.Event()
        self.header_sent = False  # the PROXY header is on the primary path: the switch's bytes may follow
        self._tasks: list[asyncio.Task] = []

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
        transport.pause_reading()
        self.peer = transport.get_extra_info("peername")[:2]
        self.tap.label = str(self.peer)
        if self.tap.link:
            self.tap.link.label = self.tap.label
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
        self.header_sent = True
        for data in self.switch.early:
            self.switch.forward(data)
        self.switch.early.clear()
        if not self.closed.is_set():
            self.switch.transport.resume_reading()
            self.tap.start()

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for pipe in (self.switch, self.primary):
            if pipe.transport is not None:
                pipe.transport.close()
        for task in self._tasks:
            task.cancel()
        self.tap.close()
        if self.on_close:
            self.on_close(self)

    async def wait_closed(self) -> None:
        await self.closed.wait()


async def start_server(
    settings: Settings,
    on_open: Callable[[SwitchSession], None] | None = None,
    on_close: Callable[[SwitchSession], None] | None = None,
    **where,
) -> asyncio.Server:
    """Accept switches (on `sock=` or `host=`, `port=`), one SwitchSession each."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: SwitchSession(settings, on_open, on_close).switch, **where)
