"""The kernel's copies of the switches' OpenFlow streams, reassembled.

Why AF_PACKET: a packet socket on the interface that holds the front VIP
gets a clone of every frame the interface receives and sends, after the
kernel has already handed the original on, so the switch's path never
waits for the mirror, in either mode. The frames carry the addresses the
switch knows (switch <-> front VIP): incoming frames are copied before the
DNAT, outgoing ones after the reverse NAT, and in proxy mode these are
HAProxy's own sockets. A classic BPF filter, run in the kernel, keeps only
TCP to or from the VIP's OpenFlow ports that carries payload, opens or
ends a session (SYN, FIN, RST); when the socket's buffer is full the kernel drops the copy, never
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

Cost: the copies arrive in a TPACKET_V3 ring shared with the kernel, a
block of frames at a time (when the block is full, or every RING_TIMEOUT_MS),
so there is no system call per frame, and the daemon wakes a few hundred
times a second, not once per frame, at any rate. Within a block, segments
that continue each other are joined and walked once: a burst of PACKET_INs
costs one pass of the reassembly and one run in the scanner.
"""

from __future__ import annotations

import asyncio
import ctypes
import ipaddress
import itertools
import logging
import mmap
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
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
TPACKET_V3 = 2
TP_STATUS_KERNEL, TP_STATUS_USER = 0, 1
SO_ATTACH_FILTER = 26
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


RING_BLOCK = 1 << 18  # bytes per ring block; a frame never spans two
RING_TIMEOUT_MS = 4  # a block that is not full is handed over after this long
# struct tpacket_block_desc: the block's status, its frame count and where its first frame starts
_BLOCK = struct.Struct("=8xIII")
# struct tpacket3_hdr: the next frame's offset, the bytes captured and on the
# wire, and where the Ethernet header starts; the sockaddr_ll that follows
# it (at TPACKET_ALIGN(48)) holds the packet type
_FRAME = struct.Struct("=I8xII4xH")
_PKTTYPE = 48 + 10


class PacketRing:
    """A packet socket on `interface` that keeps only the switch sessions
    to vip:ports (the BPF filter above) and hands their frames over in a
    TPACKET_V3 ring of about `size` bytes."""

    def __init__(self, interface: str, vip: str, ports: list[int], size: int) -> None:
        # No protocol yet: nothing is queued before the filter is attached.
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            attach_filter(self.sock, bpf_filter(vip, ports))
            self.blocks = max(4, size // RING_BLOCK)
            self.sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            frame = 1 << 11  # only checked for alignment in TPACKET_V3: frames are packed
            request = (RING_BLOCK, self.blocks, frame, RING_BLOCK // frame * self.blocks, RING_TIMEOUT_MS, 0, 0)
            self.sock.setsockopt(SOL_PACKET, PACKET_RX_RING, struct.pack("=7I", *request))
            self.map = mmap.mmap(self.sock.fileno(), RING_BLOCK * self.blocks)
            self.sock.bind((interface, ETH_P_ALL))
        except BaseException:
            self.sock.close()
            raise
        self.sock.setblocking(False)
        self.buffer = memoryview(self.map)
        self.current = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    def ready(self) -> int | None:
        """The offset of the next block the kernel handed over, if any."""
        offset = self.current * RING_BLOCK
        status, _, _ = _BLOCK.unpack_from(self.buffer, offset)
        return offset if status & TP_STATUS_USER else None

    def frames(self, block: int):
        """(where the Ethernet header starts, bytes captured, bytes on the
        wire, whether this host sent it) for each frame of the block."""
        buffer, unpack = self.buffer, _FRAME.unpack_from
        _, count, offset = _BLOCK.unpack_from(buffer, block)
        offset += block
        for _ in range(count):
            step, captured, length, mac = unpack(buffer, offset)
            yield offset + mac, captured, length, buffer[offset + _PKTTYPE] == PACKET_OUTGOING
            offset += step

    def release(self, block: int) -> None:
        """Give the block back to the kernel; the next one is read next."""
        struct.pack_into("=I", self.buffer, block + 8, TP_STATUS_KERNEL)
        self.current = (self.current + 1) % self.blocks

    def drops(self) -> int:
        """Copies the kernel dropped since the last call (the ring was full)."""
        _, drops = struct.unpack("II", self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
        return drops

    def close(self) -> None:
        self.buffer.release()
        self.map.close()
        self.sock.close()


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

    def missing_before(self, end: int) -> int:
        """Bytes before sequence number `end` (where the sender said the
        stream ends) that were never seen at all: the holes, not the
        segments held after them."""
        if self.next is None:
            return 0
        return max(0, self._distance(end) - self.held_bytes)

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
RECHECK = 0.005  # seconds between reads of whether this LB holds the VIP, between ticks
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


_IP_TCP = struct.Struct("!BxH8x4s4sHHI4xH")  # the same, then the TCP header, for a 20-byte IP header
_new_segment = tuple.__new__  # a Segment without NamedTuple's Python-level constructor: parse runs per frame


def parse(
    buffer, vip: bytes, ports: frozenset[int], outgoing: bool = True, start: int = 0, end: int | None = None
) -> Segment | None:
    """The TCP segment of the Ethernet frame in buffer[start:end], if it
    belongs to a switch session. A frame from the VIP counts only when this
    host sent it (`outgoing`): one that arrives with the VIP as its source
    is forged."""
    n = len(buffer) if end is None else end
    if n - start < 54:
        return None
    version_ihl, total, src, dst, sport, dport, seq, off_flags = _IP_TCP.unpack_from(buffer, start + 14)
    if version_ihl != 0x45:  # IP options: the TCP header starts further on
        version_ihl, total, src, dst = _IP.unpack_from(buffer, start + 14)
        t = start + 14 + (version_ihl & 0x0F) * 4
        if n < t + 20:
            return None
        sport, dport, seq, _, off_flags = _TCP.unpack_from(buffer, t)
    else:
        t = start + 34
    first, last = t + (off_flags >> 12) * 4, start + 14 + total
    if not total or last > n:
        last = n
    payload = bytes(buffer[first:last]) if last > first else b""
    if dst == vip and dport in ports:
        return _new_segment(Segment, ((src, sport, dport), True, seq, off_flags & 0x3F, payload))
    if src == vip and sport in ports and outgoing:
        return _new_segment(Segment, ((dst, dport, sport), False, seq, off_flags & 0x3F, payload))
    return None


class Batch:
    """The segments of one ring block, where they continue each other,
    joined into one segment per direction of a session before they are
    handled. A segment that does not continue its direction's run, or that
    starts or ends the session, first hands on what the session has
    gathered: the controller's side before the switch's, so that a request
    of the backup is always known before the reply it gets."""

    __slots__ = ("handle", "runs")

    def __init__(self, handle: Callable[[Segment], None]) -> None:
        self.handle = handle
        # per direction (runs[from_switch]): switch key -> [first seq, next seq, flags, payloads]
        self.runs: tuple[dict, dict] = ({}, {})

    def add(self, segment: Segment) -> None:
        key, from_switch, seq, flags, payload = segment
        if flags & (SYN | FIN | RST) or not payload:
            self.hand_on(key)
            self.handle(segment)
            return
        runs = self.runs[from_switch]
        run = runs.get(key)
        if run is not None:
            if run[1] == seq:
                run[3].append(payload)
                run[1] = (seq + len(payload)) % SEQ_MOD
                return
            self.hand_on(key)
        runs[key] = [seq, (seq + len(payload)) % SEQ_MOD, flags, [payload]]

    def hand_on(self, key: tuple[bytes, int, int]) -> None:
        for from_switch in (False, True):
            run = self.runs[from_switch].pop(key, None)
            if run is not None:
                payload = run[3][0] if len(run[3]) == 1 else b"".join(run[3])
                self.handle(_new_segment(Segment, (key, from_switch, run[0], run[2], payload)))

    def flush(self) -> None:
        for key in [*self.runs[False], *self.runs[True]]:
            self.hand_on(key)


# -- sessions ---------------------------------------------------------------
class Flow:
    """One switch session as the capture sees it, feeding one tap."""

    def __init__(self, flow_id: int, key: tuple[bytes, int, int], peer: tuple[str, int], tap) -> None:
        self.id, self.key, self.peer, self.tap = flow_id, key, peer, tap
        self.fins: set[bool] = set()  # the directions that closed (True: the switch's)
        self.last_seen = time.monotonic()
        self.isn: int | None = None  # the switch's SYN, when the capture saw it
        self.switch_end: int | None = None  # where the switch's FIN or RST says its stream ends
        # The streams call the tap only, never the flow: no cycle keeps a
        # flow that ended until the cycle collector runs.
        view = tap.view
        self.switch = Stream(tap.from_switch, tap.switch_gap, lambda: view.version)
        self.controller = Stream(tap.from_controller, lambda missing: tap.controller_gap(), lambda: view.version)

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
        ring: PacketRing | None,
        vip: str,
        ports: list[int],
        new_tap: Callable[[tuple[str, int], bool], object],
        on_open: Callable[[Flow], None] | None = None,
        on_close: Callable[[Flow], None] | None = None,
        idle_timeout: float = 60.0,
        is_active: Callable[[], bool] | None = None,
        max_flows: int = 16384,
    ) -> None:
        self.ring = ring
        self.vip = socket.inet_aton(vip)
        self.vip_text = vip
        self.ports = frozenset(ports)
        self.new_tap = new_tap
        self.on_open, self.on_close = on_open, on_close
        self.idle_timeout = idle_timeout
        self.is_active = is_active or (lambda: holds(vip))
        self.active = False
        self.checked = -RECHECK  # when whether this LB holds the VIP was last read
        self.max_flows = max_flows
        self.flows: dict[tuple[bytes, int, int], Flow] = {}
        self.unproven: OrderedDict[tuple[bytes, int, int], list] = OrderedDict()
        self.stats = CaptureStats()
        self._ids = itertools.count(1)

    def readable(self) -> None:
        """Take the blocks the kernel handed over (at most a ring's worth
        per call, so the loop stays fair)."""
        ring, stats, vip, ports = self.ring, self.stats, self.vip, self.ports
        now = time.monotonic()
        batch = Batch(lambda segment: self.handle(segment, now))
        for _ in range(ring.blocks):
            block = ring.ready()
            if block is None:
                break
            try:
                for start, captured, length, outgoing in ring.frames(block):
                    stats.packets += 1
                    if captured < length:
                        stats.truncated += 1
                        continue
                    segment = parse(ring.buffer, vip, ports, outgoing, start, start + captured)
                    if segment is None or not (self.active or self.now_active(now, segment.flags)):
                        stats.ignored += 1
                        continue
                    batch.add(segment)
                batch.flush()
            except Exception:  # a bug must not freeze the ring: the block's copies are lost, logged
                log.exception("capture: a ring block failed; its copies are lost")
                batch = Batch(batch.handle)
            finally:
                ring.release(block)

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
        if flags & (FIN | RST) and segment.from_switch and flow.switch_end is None:
            # The first says it: an RST after the FIN is one past its end.
            flow.switch_end = (segment.seq + len(segment.payload)) % SEQ_MOD
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
        # What waited in vain, and a lost tail the switch's FIN or RST reveals: never seen whole.
        missing = flow.switch.leftover()
        if flow.switch_end is not None:
            missing += flow.switch.missing_before(flow.switch_end)
        flow.tap.switch_gap(missing)
        flow.tap.close()
        log.debug("switch %s: session %s", flow.peer, why)
        if self.on_close:
            self.on_close(flow)

    async def run(self, tick: float = 0.1) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(self.ring, self.readable)
        try:
            while True:
                self.tick()
                await asyncio.sleep(tick)
        finally:
            loop.remove_reader(self.ring)
            for flow in list(self.flows.values()):
                self.end(flow, "the capture stopped")

    def now_active(self, now: float, flags: int = 0) -> bool:
        """A segment of a switch session arrived while this LB was standby at
        the last tick: whether it holds the VIP now (read at most every
        RECHECK seconds, but for every SYN). A switch that connects in the
        instant its LB takes the VIP over is then captured from its SYN, not
        picked up mid-flight with no view to feed the master from."""
        if now - self.checked < RECHECK and flags & (SYN | ACK) != SYN:
            return False
        self.checked = now
        self.set_active(self.is_active())
        return self.active

    def set_active(self, active: bool) -> None:
        if active != self.active:
            log.info(
                "front VIP %s %s: capture %s", self.vip_text, "here" if active else "gone", "on" if active else "off"
            )
            self.active = active
            if not active:
                for flow in list(self.flows.values()):
                    self.end(flow, "the VIP left this LB")

    def tick(self) -> None:
        """Every tenth of a second: gaps that waited long enough, idle
        sessions, kernel drops, and whether this LB holds the VIP."""
        now = time.monotonic()
        self.checked = now
        self.set_active(self.is_active())
        for key, held in list(self.unproven.items()):
            if now - held[0][1] > UNPROVEN_SECONDS:
                del self.unproven[key]
        for flow in list(self.flows.values()):
            flow.switch.expire(now)
            flow.controller.expire(now)
            if now - flow.last_seen > self.idle_timeout:
                self.end(flow, "idle")
        self.stats.kernel_drops += self.ring.drops()
