"""The kernel's copies of the switches' OpenFlow streams, reassembled.

Why AF_PACKET: a packet socket on the interface that holds the front VIP
gets a clone of every frame the interface receives and sends, after the
kernel has already handed the original on, so the switch's path never
waits for the mirror, in either mode. The frames carry the addresses the
switch knows (switch <-> front VIP): incoming frames are copied before the
DNAT, outgoing ones after the reverse NAT, and in proxy mode these are
HAProxy's own sockets. A classic BPF filter, run in the kernel, keeps only
TCP to or from the VIP's OpenFlow ports that carries payload or ends a
session; when the socket's buffer is full the kernel drops the copy, never
the packet, and counts it (PACKET_STATISTICS). NFLOG would need a netlink
parser and a rule in the data path's tables; nftables `dup` needs a second
interface and another receiver.

Each direction of each session is reassembled by TCP sequence number:
duplicates and retransmissions are dropped, out-of-order segments wait for
the gap to fill, and a gap that does not fill (the copy was dropped; the
switch never resends what the LB received) is counted as unseen bytes. A
stream picked up mid-flight (the LB took the VIP over) or after a gap is
scanned for the next message boundary: the first offset from which whole,
well-formed OpenFlow headers chain exactly to the end of the data seen.
"""

from __future__ import annotations

import asyncio
import ctypes
import ipaddress
import itertools
import logging
import re
import socket
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from .local import holds
from .openflow import FramingError

log = logging.getLogger("sdn_ha_mirror")

ETH_P_IP = 0x0800
# Every frame, both ways: a socket bound to ETH_P_IP alone gets only the
# frames the interface receives, never those it sends.
ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
PACKET_OUTGOING = 4
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
SEQ_MOD = 1 << 32
MAX_FRAME = 14 + 0xFFFF
# Whole, well-formed messages in a row that prove a boundary even when the
# data seen does not end at a message end (a chance chain of this many is
# far less likely than the 1 in 2^40 or so of one header).
CHAIN_PROOF = 4
# Highest message type of OpenFlow 1.5; anything above is not a header.
MAX_TYPE = 35
_HEADER = struct.Struct("!BBH")
_TCP = struct.Struct("!HHIIH")


# -- the kernel filter ----------------------------------------------------
def bpf_filter(vip: str, ports: list[int]) -> list[tuple[int, int, int, int]]:
    """Classic BPF for Ethernet frames: IPv4 TCP, not a fragment, to or from
    vip on one of ports, with payload or with SYN, FIN or RST set."""
    vip_k = int(ipaddress.IPv4Address(vip))
    code: list[tuple] = []  # (op, jt label, jf label, k) with labels resolved below

    def op(opcode, k=0, jt=None, jf=None):
        code.append((opcode, jt, jf, k))

    def label(name):
        code.append(("label", name))

    op(0x28, 12)  # ldh [12]: ethertype
    op(0x15, ETH_P_IP, None, "drop")
    op(0x30, 23)  # ldb [23]: protocol
    op(0x15, 6, None, "drop")
    op(0x28, 20)  # ldh [20]: fragment offset
    op(0x45, 0x1FFF, "drop", None)
    op(0xB1, 14)  # ldxb 4*([14]&0xf): IP header length
    op(0x20, 30)  # ld [30]: destination address
    op(0x15, vip_k, "to_vip", None)
    op(0x20, 26)  # ld [26]: source address
    op(0x15, vip_k, "from_vip", "drop")
    for name, offset in (("to_vip", 16), ("from_vip", 14)):
        label(name)
        op(0x48, offset)  # ldh [x+14|16]: the VIP's port
        for port in ports:
            op(0x15, port, "payload", None)
        op(0x05, 0, None, None)  # ja drop (k patched below)
        code[-1] = ("ja", "drop")
    label("payload")
    op(0x50, 27)  # ldb [x+27]: TCP flags
    op(0x45, FIN | SYN | RST, "accept", None)
    op(0x50, 26)  # ldb [x+26]: data offset
    op(0x54, 0xF0)  # and #0xf0
    op(0x74, 2)  # rsh #2: TCP header length
    op(0x02, 0)  # st M[0]
    op(0x87)  # txa: IP header length
    op(0x61, 0)  # ldx M[0]
    op(0x0C)  # add x
    op(0x07)  # tax: both header lengths
    op(0x28, 16)  # ldh [16]: IP total length
    op(0x2D, 0, "accept", "drop")  # jgt x
    label("accept")
    op(0x06, 0xFFFFFFFF)
    label("drop")
    op(0x06, 0)

    positions, pc = {}, 0
    for entry in code:
        if entry[0] == "label":
            positions[entry[1]] = pc
        else:
            pc += 1
    program, pc = [], 0
    for entry in code:
        if entry[0] == "label":
            continue
        if entry[0] == "ja":
            program.append((0x05, 0, 0, positions[entry[1]] - pc - 1))
        else:
            opcode, jt, jf, k = entry
            rel = [0 if j is None else positions[j] - pc - 1 for j in (jt, jf)]
            program.append((opcode, rel[0], rel[1], k))
        pc += 1
    return program


def attach_filter(sock: socket.socket, program: list[tuple[int, int, int, int]]) -> None:
    blob = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *insn) for insn in program))
    fprog = struct.pack("HL", len(program), ctypes.addressof(blob))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def open_socket(interface: str, vip: str, ports: list[int], buffer: int) -> socket.socket:
    # No protocol yet: nothing is queued before the filter is attached.
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    attach_filter(sock, bpf_filter(vip, ports))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, buffer)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)
    sock.bind((interface, ETH_P_ALL))
    sock.setblocking(False)
    return sock


def kernel_drops(sock: socket.socket) -> int:
    """Copies the kernel dropped since the last call (the buffer was full)."""
    _, drops = struct.unpack("II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
    return drops


# -- message boundaries ---------------------------------------------------
WAIT = -1  # no boundary can be told yet: more data is needed


_CANDIDATES = {
    version: re.compile(
        b"(?=%s[\\x00-\\x%02x])" % (re.escape(bytes([version])) if version else b"[\\x01-\\x06]", MAX_TYPE)
    )
    for version in range(7)
}


def find_boundary(data: bytes, version: int, start: int = 0) -> tuple[int, int]:
    """Where whole OpenFlow messages of `version` (any known version when 0)
    start and chain exactly to the end of `data`, or through CHAIN_PROOF
    whole messages: (that offset, or WAIT; the offset a later search, with
    more data, may start from, every candidate before it being refuted)."""
    n = len(data)
    unpack = _HEADER.unpack_from
    resume = None
    for match in _CANDIDATES[version if 0 < version <= 6 else 0].finditer(data, start):
        first = match.start()
        if first > n - 8:
            break
        off, whole, v0 = first, 0, data[first]
        while off + 8 <= n and whole < CHAIN_PROOF:
            v, kind, length = unpack(data, off)
            if v != v0 or kind > MAX_TYPE or length < 8:
                break
            if off + length > n:
                off = n + 1  # valid so far, cut short: cannot tell yet
                break
            off += length
            whole += 1
        else:
            if whole and (off == n or whole >= CHAIN_PROOF):
                return first, first
            if resume is None:  # chained to a partial header: not refuted
                resume = first
            continue
        if off == n + 1 and resume is None:
            resume = first
    return WAIT, resume if resume is not None else max(start, n - 7)


# -- one direction of one session ------------------------------------------
class Stream:
    """Reassembles one direction of a TCP session and delivers its bytes
    in order, from a message boundary on.

    deliver(bytes) gets the stream; gap(n) says that n bytes will never be
    delivered (the consumer then starts again at a message boundary).
    """

    __slots__ = (
        "deliver",
        "gap",
        "held",
        "held_bytes",
        "held_since",
        "next",
        "scan_from",
        "synced",
        "unsynced",
        "version",
    )

    def __init__(self, deliver: Callable[[bytes], None], gap: Callable[[int], None], version: Callable[[], int]):
        self.deliver, self.gap, self.version = deliver, gap, version
        self.next: int | None = None
        self.synced = False
        self.held: dict[int, bytes] = {}
        self.held_bytes = 0
        self.held_since = 0.0
        self.unsynced = b""
        self.scan_from = 0

    def syn(self, seq: int) -> None:
        """The session starts here, at a message boundary."""
        self.next, self.synced = (seq + 1) % SEQ_MOD, True
        self.held.clear()
        self.held_bytes, self.unsynced, self.scan_from = 0, b"", 0

    def segment(self, seq: int, payload: bytes, now: float, stats: CaptureStats) -> None:
        if self.next is None:  # picked up mid-flight
            self.next = seq
        d = (seq - self.next) % SEQ_MOD
        if d >= SEQ_MOD // 2:
            d -= SEQ_MOD
        if d < 0:
            if d + len(payload) <= 0:
                stats.duplicates += 1
                return
            payload, d = payload[-d:], 0
        if d > 0:
            stats.out_of_order += 1
            if seq not in self.held:
                if not self.held:
                    self.held_since = now
                self.held[seq] = payload
                self.held_bytes += len(payload)
            if self.held_bytes > HELD_LIMIT:
                self.skip_gap()
            return
        self._accept(payload)
        if self.held:
            self._drain()

    def near(self, seq: int) -> bool:
        """Whether seq is where this stream could be (or nothing is known)."""
        return self.next is None or abs(self._distance(seq)) <= WINDOW

    def expire(self, now: float) -> None:
        """Give up on a gap the network did not fill in time."""
        if self.held and now - self.held_since > GAP_TIMEOUT:
            self.skip_gap()

    def skip_gap(self) -> None:
        """Give up on every hole before the held segments: count each as
        never seen, and deliver what was held, in one sorted pass."""
        for seq in sorted(self.held, key=self._distance):
            payload = self.held.pop(seq)
            self.held_bytes -= len(payload)
            d = self._distance(seq)
            if d > 0:
                self.gap(d + len(self.unsynced))
                self.unsynced, self.synced, self.scan_from = b"", False, 0
                self.next, d = seq, 0
            if d + len(payload) > 0:
                self._accept(payload[-d:] if d else payload)

    def _drain(self) -> None:
        """Deliver the held segments that now follow on, in one sorted pass."""
        for seq in sorted(self.held, key=self._distance):
            d = self._distance(seq)
            if d > 0:
                break
            payload = self.held.pop(seq)
            self.held_bytes -= len(payload)
            if d + len(payload) > 0:
                self._accept(payload[-d:] if d else payload)
        if self.held:
            self.held_since = time.monotonic()

    def _distance(self, seq: int) -> int:
        """Signed bytes from the next expected sequence number to seq."""
        return (seq - self.next + SEQ_MOD // 2) % SEQ_MOD - SEQ_MOD // 2

    def leftover(self) -> int:
        """Bytes held that will never be delivered (the session ended)."""
        return self.held_bytes + len(self.unsynced)

    def _accept(self, payload: bytes) -> None:
        self.next = (self.next + len(payload)) % SEQ_MOD
        if not self.synced:
            data = self.unsynced + payload
            start, self.scan_from = find_boundary(data, self.version(), self.scan_from)
            if start == WAIT:
                if len(data) > UNSYNCED_LIMIT:
                    cut = len(data) - MAX_FRAME
                    self.gap(cut)
                    data, self.scan_from = data[cut:], max(0, self.scan_from - cut)
                self.unsynced = data
                return
            self.gap(start)
            self.unsynced, self.synced, self.scan_from, payload = b"", True, 0, data[start:]
        try:
            self.deliver(payload)
        except FramingError:
            # A boundary found by scanning can be wrong: what the consumer
            # could not frame is counted as never seen, and the search
            # starts again with the next data.
            self.gap(0)
            self.synced = False


HELD_LIMIT = 1 << 20  # out-of-order bytes held per direction before a gap is declared
# The switch's side of a session picked up mid-flight waits this long, at
# most this much, for this LB to forward the controller's side.
UNPROVEN_SECONDS = 2.0
UNPROVEN_SEGMENTS = 64
UNPROVEN_SESSIONS = 4096
# An RST or FIN counts only this close to where the stream is.
WINDOW = 1 << 22
GAP_TIMEOUT = 0.3  # seconds a gap may wait for a retransmission
UNSYNCED_LIMIT = 4 * MAX_FRAME


@dataclass
class CaptureStats:
    packets: int = 0
    kernel_drops: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    ignored: int = 0  # not to or from the VIP's ports, or the LB is standby
    truncated: int = 0  # frames longer than the capture's buffer
    unproven: int = 0  # switch segments of a session this LB was never seen to forward
    refused: int = 0  # sessions past max_flows
    out_of_window: int = 0  # RST or FIN far from the stream's sequence numbers


class Segment(NamedTuple):
    switch: tuple[bytes, int, int]  # the switch's address (packed) and port, and the VIP's port
    from_switch: bool
    seq: int
    flags: int
    payload: bytes


_IP = struct.Struct("!BxH8x4s4s")  # version and header length, total length, source, destination


def parse(frame: memoryview, vip: bytes, ports: frozenset[int], outgoing: bool = True) -> Segment | None:
    """The TCP segment of an Ethernet frame, if it belongs to a switch
    session. A frame from the VIP counts only when this host sent it
    (`outgoing`): one that arrives with the VIP as its source is forged."""
    n = len(frame)
    if n < 54:
        return None
    version_ihl, total, src, dst = _IP.unpack_from(frame, 14)
    t = 14 + (version_ihl & 0x0F) * 4
    if n < t + 20:
        return None
    sport, dport, seq, _, off_flags = _TCP.unpack_from(frame, t)
    start, end = t + (off_flags >> 12) * 4, (14 + total if total and 14 + total < n else n)
    payload = bytes(frame[start:end]) if end > start else b""
    if dst == vip and dport in ports:
        return Segment((src, sport, dport), True, seq, off_flags & 0x3F, payload)
    if src == vip and sport in ports and outgoing:
        return Segment((dst, dport, sport), False, seq, off_flags & 0x3F, payload)
    return None


# -- sessions ---------------------------------------------------------------
class Flow:
    """One switch session as the capture sees it, feeding one tap."""

    def __init__(self, flow_id: int, key: tuple[bytes, int, int], peer: tuple[str, int], tap) -> None:
        self.id, self.key, self.peer, self.tap = flow_id, key, peer, tap
        self.fins: set[bool] = set()  # the directions that closed (True: the switch's)
        self.last_seen = time.monotonic()
        self.isn: int | None = None  # the switch's SYN, when the capture saw it
        self.switch = Stream(tap.from_switch, tap.switch_gap, self._version)
        self.controller = Stream(tap.from_controller, self._controller_gap, self._version)

    def _version(self) -> int:
        return self.tap.view.version

    def _controller_gap(self, missing: int) -> None:
        self.tap.controller_gap()

    @property
    def queue(self):
        return self.tap.queue

    @property
    def master_ready(self):
        return self.tap.master_ready


class Capture:
    """Reads the packet socket, keeps a Flow per switch session, and runs
    only while this LB holds the VIP (where the standby sees anything at
    all, it is a stray copy of flooded frames)."""

    def __init__(
        self,
        sock: socket.socket,
        vip: str,
        ports: list[int],
        new_tap: Callable[[tuple[str, int], bool], object],
        on_open: Callable[[Flow], None] | None = None,
        on_close: Callable[[Flow], None] | None = None,
        idle_timeout: float = 60.0,
        is_active: Callable[[], bool] | None = None,
        max_flows: int = 16384,
    ) -> None:
        self.sock = sock
        self.vip = socket.inet_aton(vip)
        self.vip_text = vip
        self.ports = frozenset(ports)
        self.new_tap = new_tap
        self.on_open, self.on_close = on_open, on_close
        self.idle_timeout = idle_timeout
        self.is_active = is_active or (lambda: holds(vip))
        self.active = False
        self.max_flows = max_flows
        self.flows: dict[tuple[bytes, int, int], Flow] = {}
        self.unproven: OrderedDict[tuple[bytes, int, int], list] = OrderedDict()
        self.stats = CaptureStats()
        self._ids = itertools.count(1)
        self._buffer = bytearray(MAX_FRAME + 64)
        self._view = memoryview(self._buffer)

    def readable(self) -> None:
        """Take what the socket holds (bounded per call, so the loop stays fair)."""
        now = time.monotonic()
        for _ in range(4096):
            try:
                n, where = self.sock.recvfrom_into(self._buffer, 0, socket.MSG_TRUNC)
            except BlockingIOError:
                return
            self.stats.packets += 1
            if n > len(self._buffer):
                self.stats.truncated += 1
                continue
            segment = parse(self._view[:n], self.vip, self.ports, where[2] == PACKET_OUTGOING)
            if segment is None or not self.active:
                self.stats.ignored += 1
                continue
            self.handle(segment, now)

    def handle(self, segment: Segment, now: float) -> None:
        flags, key = segment.flags, segment.switch
        flow = self.flows.get(key)
        if flags & SYN and segment.from_switch and not flags & ACK:
            if flow is not None:
                if flow.isn == segment.seq:
                    return  # the SYN again
                self.end(flow, "a new session from the same address and port")
            self.unproven.pop(key, None)
            flow = self.open(key, mid_flight=False)
            if flow is not None:
                flow.isn = segment.seq
                flow.switch.syn(segment.seq)
            return
        if flow is None:
            if segment.from_switch:
                # Mid-flight, the switch's side proves nothing (anyone can
                # send to the VIP): hold it until this LB forwards the
                # controller's side of the same session.
                self._hold_unproven(segment, now)
                return
            if flags & (RST | FIN):
                return
            flow = self.open(key, mid_flight=True)
            if flow is None:
                return
            for held, _ in self.unproven.pop(key, ()):
                self._feed(flow, held, now)
        self._feed(flow, segment, now)

    def _feed(self, flow: Flow, segment: Segment, now: float) -> None:
        flags = segment.flags
        stream = flow.switch if segment.from_switch else flow.controller
        if flags & (RST | FIN) and not stream.near(segment.seq):
            self.stats.out_of_window += 1
            return
        flow.last_seen = now
        if flags & SYN:
            stream.syn(segment.seq)
        elif segment.payload:
            stream.segment(segment.seq, segment.payload, now, self.stats)
        if flags & RST:
            self.end(flow, "reset")
        elif flags & FIN:
            flow.fins.add(segment.from_switch)
            if len(flow.fins) == 2:
                self.end(flow, "closed")

    def _hold_unproven(self, segment: Segment, now: float) -> None:
        self.stats.unproven += 1
        held = self.unproven.get(segment.switch)
        if held is None:
            if len(self.unproven) >= UNPROVEN_SESSIONS:
                self.unproven.popitem(last=False)
            held = self.unproven[segment.switch] = []
        if len(held) < UNPROVEN_SEGMENTS:
            held.append((segment, now))

    def open(self, key: tuple[bytes, int, int], mid_flight: bool) -> Flow | None:
        """A session starts (its SYN), or one already running shows up (this
        LB just took the VIP, or the capture restarted)."""
        if len(self.flows) >= self.max_flows:
            self.stats.refused += 1
            return None
        peer = (socket.inet_ntoa(key[0]), key[1])
        flow = Flow(next(self._ids), key, peer, self.new_tap(peer, mid_flight))
        self.flows[key] = flow
        flow.tap.start()
        if self.on_open:
            self.on_open(flow)
        return flow

    def end(self, flow: Flow, why: str) -> None:
        if self.flows.get(flow.key) is flow:
            del self.flows[flow.key]
        flow.tap.switch_gap(flow.switch.leftover())  # what waited in vain: never seen whole
        flow.tap.close()
        log.debug("switch %s: session %s", flow.peer, why)
        if self.on_close:
            self.on_close(flow)

    async def run(self, tick: float = 0.1) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(self.sock, self.readable)
        try:
            while True:
                self.tick()
                await asyncio.sleep(tick)
        finally:
            loop.remove_reader(self.sock)
            for flow in list(self.flows.values()):
                self.end(flow, "the capture stopped")

    def tick(self) -> None:
        """Every tenth of a second: gaps that waited long enough, idle
        sessions, kernel drops, and whether this LB holds the VIP."""
        now = time.monotonic()
        active = self.is_active()
        if active != self.active:
            log.info(
                "front VIP %s %s: capture %s", self.vip_text, "here" if active else "gone", "on" if active else "off"
            )
            self.active = active
            if not active:
                for flow in list(self.flows.values()):
                    self.end(flow, "the VIP left this LB")
        for key, held in list(self.unproven.items()):
            if now - held[0][1] > UNPROVEN_SECONDS:
                del self.unproven[key]
        for flow in list(self.flows.values()):
            flow.switch.expire(now)
            flow.controller.expire(now)
            if now - flow.last_seen > self.idle_timeout:
                self.end(flow, "idle")
        self.stats.kernel_drops += kernel_drops(self.sock)
