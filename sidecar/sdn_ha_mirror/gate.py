"""The identity gate: python3 -m sdn_ha_mirror.gate --queue N --bindings PATH

Without the relay, the switches' bytes go to their receiver (HAProxy in
proxy mode, a backup controller through the kernel's NAT in NAT mode)
without passing through the mirror, and the capture sees them only as
copies, too late to stop a claim. So the LB's rules (the mirror role's
identity rules) hand this daemon, through an NFQUEUE, every packet a switch
sends on a session that is not proven yet. The gate follows each stream
from its SYN with the same Gate (identity.py) as the relay, and answers
each packet:

- accept: the bytes are checked and may go on;
- prove: the controller's handshake is over with a datapath id bound to the
  switch's address, and the receiver acknowledged its last byte (the rules
  queue the receiver's packets of unproven sessions too: a backup's from the
  control segment's interface, HAProxy's as this host sends them; the gate
  never holds those back). The packet goes on with the mark `--proven`, the
  identity table moves it to the connection, and from then on the kernel
  passes the session on without asking (in NAT mode conntrackd copies the
  mark to the other LB, so a takeover asks nothing either);
- refuse: the packet goes on with the mark `--refused`, the identity table
  moves it to the connection and drops the packet and every later one from
  the switch but its resets, and the gate sends the switch a reset from the
  front VIP. The receiver never gets the claim; its next packet still
  reaches the switch, which answers with a reset that closes the
  receiver's side.

A segment must carry the bytes it carried before, wherever it overlaps what
the gate let through: the receiver's TCP keeps the first copy it got, so
the gate knows exactly what the receiver reads. A segment that leaves a
gap is dropped (the switch sends it again). A stream whose start the gate
did not see (the gate restarted, or the other LB held the VIP while it
began) is adopted during the first --adopt seconds of the gate's life,
because the sessions that were up before it started are among them, and
refused after that.

No gate listening (stopped, restarting): the table's queue has `bypass`,
and the kernel lets the packets through (fail open: the switches keep
their controllers; admission still holds).

Needs CAP_NET_ADMIN (the queue) and CAP_NET_RAW (the resets).
"""

from __future__ import annotations

import argparse
import errno
import logging
import signal
import socket
import struct
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from . import logs
from .identity import Bindings, Gate
from .reset import RST, tcp_segment

log = logging.getLogger("sdn_ha_mirror.gate")

# linux/netlink.h, linux/netfilter/nfnetlink.h, nfnetlink_queue.h, netfilter.h
NETLINK_NETFILTER = 12
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_PACKET_HDR, NFQA_VERDICT_HDR, NFQA_MARK, NFQA_PAYLOAD = 1, 2, 3, 10
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN = 1, 2, 3
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_PACKET = 2
NF_DROP, NF_ACCEPT = 0, 1

SYN, RST_FLAG, ACK_FLAG, URG = 0x02, 0x04, 0x10, 0x20
MAX_FLOWS = 4096  # streams followed at once; the oldest is refused past this
FORGOTTEN = 65536  # streams remembered as refused or proven
HANDSHAKE_TIMEOUT = 30.0  # seconds a stream may take to prove itself
STREAM_LIMIT = 1 << 19  # bytes of a stream the gate keeps until the controller acknowledges its handshake


def attribute(kind: int, payload: bytes) -> bytes:
    size = 4 + len(payload)
    return struct.pack("=HH", size, kind) + payload + bytes(-size % 4)


def message(kind: int, flags: int, queue: int, attributes: bytes, seq: int = 0) -> bytes:
    body = struct.pack("!BBH", socket.AF_UNSPEC, 0, queue) + attributes
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | kind, flags, seq, 0) + body


def attributes(data: bytes) -> dict[int, bytes]:
    found, offset = {}, 0
    while offset + 4 <= len(data):
        size, kind = struct.unpack_from("=HH", data, offset)
        if size < 4:
            break
        found[kind & 0x3FFF] = data[offset + 4 : offset + size]  # NLA_TYPE_MASK
        offset += (size + 3) & ~3
    return found


def messages(data: bytes):
    """(type, flags, body) of each netlink message in one datagram."""
    offset = 0
    while offset + 16 <= len(data):
        size, kind, flags, _, _ = struct.unpack_from("=IHHII", data, offset)
        if size < 16:
            break
        yield kind, flags, data[offset + 16 : offset + size]
        offset += (size + 3) & ~3


def verdict_message(queue: int, packet_id: int, verdict: int, mark: int | None = None) -> bytes:
    attrs = attribute(NFQA_VERDICT_HDR, struct.pack("!II", verdict, packet_id))
    if mark is not None:
        attrs += attribute(NFQA_MARK, struct.pack("!I", mark))
    return message(NFQNL_MSG_VERDICT, NLM_F_REQUEST, queue, attrs)


@dataclass
class Segment:
    source: str
    destination: str
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    payload: bytes

    @property
    def key(self) -> tuple[str, int, str, int]:
        return self.source, self.sport, self.destination, self.dport


def parse(packet: bytes) -> Segment | None:
    """An IPv4 TCP packet's addresses, ports, numbers and payload."""
    if len(packet) < 40 or packet[0] >> 4 != 4 or packet[9] != socket.IPPROTO_TCP:
        return None
    ihl = (packet[0] & 0x0F) * 4
    total = min(int.from_bytes(packet[2:4], "big"), len(packet))
    if ihl < 20 or total < ihl + 20:
        return None
    sport, dport, seq, ack, offset, flags = struct.unpack_from("!HHIIBB", packet, ihl)
    start = ihl + (offset >> 4) * 4
    if start > total:
        return None
    return Segment(
        socket.inet_ntoa(packet[12:16]),
        socket.inet_ntoa(packet[16:20]),
        sport,
        dport,
        seq,
        ack,
        flags,
        packet[start:total],
    )


@dataclass
class Flow:
    gate: Gate
    base: int  # the sequence number of the stream's first byte
    started: float
    passed: bytearray = field(default_factory=bytearray)  # what the gate let through, byte for byte
    end: int | None = None  # the handshake was checked through this byte: proven once the controller acknowledges it


ACCEPT, PROVE, REFUSE, DROP = "accept", "prove", "refuse", "drop"


@dataclass
class Counts:
    proven: int = 0
    refused: int = 0
    adopted: int = 0
    gaps: int = 0


class Streams:
    """Every switch stream the gate follows, and the answer for each packet."""

    def __init__(self, bindings: Bindings, adopt_until: float, vip: str, clock=time.monotonic) -> None:
        self.bindings = bindings
        self.vip = vip  # packets to it are the switches'; the others, the controllers' replies
        self.adopt_until = adopt_until
        self.clock = clock
        self.flows: OrderedDict[tuple, Flow] = OrderedDict()
        self.done: OrderedDict[tuple, str] = OrderedDict()  # key -> PROVE or REFUSE, for packets already queued
        self.counts = Counts()

    def _finish(self, key: tuple, answer: str, count: str | None = None) -> str:
        self.flows.pop(key, None)
        self.done[key] = answer
        self.done.move_to_end(key)
        while len(self.done) > FORGOTTEN:
            self.done.popitem(last=False)
        count = count or ("proven" if answer == PROVE else "refused")
        setattr(self.counts, count, getattr(self.counts, count) + 1)
        return answer

    def answer(self, segment: Segment) -> str:
        if segment.destination != self.vip:
            return self._reply(segment)
        key, now = segment.key, self.clock()
        if segment.flags & SYN and not segment.flags & ACK_FLAG:
            if segment.payload:
                return DROP  # data on a SYN (TCP Fast Open): the switch sends it again after the handshake
            flow = self.flows.get(key)
            if flow is not None and (flow.passed or flow.gate.seen):
                # conntrack passes a SYN on an established connection; the
                # controller's TCP keeps its stream, so the gate keeps its own.
                log.warning("switch %s sent a SYN in the middle of its session; refused", flow.gate.label)
                return self._finish(key, REFUSE)
            if flow is not None and flow.base == segment.seq + 1:
                return ACCEPT  # the same SYN again
            self.done.pop(key, None)
            self.flows[key] = Flow(
                Gate(self.bindings, segment.source, f"{segment.source}:{segment.sport}"), segment.seq + 1, now
            )
            self.flows.move_to_end(key)
            while len(self.flows) > MAX_FLOWS:
                old, flow = self.flows.popitem(last=False)
                log.warning("switch %s: too many sessions in their handshake; this one is refused", flow.gate.label)
                self._finish(old, REFUSE)
            return ACCEPT
        if segment.flags & RST_FLAG:
            return ACCEPT  # the controller's TCP reads no payload on a reset: neither does the gate
        if key in self.done:
            return self.done[key]
        flow = self.flows.get(key)
        if flow is None:
            if not segment.payload:
                return ACCEPT
            if now < self.adopt_until:
                log.info("switch %s:%d: a session begun before this gate, adopted", segment.source, segment.sport)
                return self._finish(key, PROVE, "adopted")
            log.warning("switch %s:%d: a session this gate did not see begin; refused", segment.source, segment.sport)
            return self._finish(key, REFUSE)
        if now - flow.started > HANDSHAKE_TIMEOUT:
            log.warning("switch %s: no handshake after %.0f s; refused", flow.gate.label, HANDSHAKE_TIMEOUT)
            return self._finish(key, REFUSE)
        if not segment.payload:
            return ACCEPT
        if segment.flags & URG:
            # Without SO_OOBINLINE the controller's TCP takes the urgent byte
            # out of the stream it reads; no switch sends urgent data.
            log.warning("switch %s sent urgent data; refused", flow.gate.label)
            return self._finish(key, REFUSE)
        start = (segment.seq - flow.base) & 0xFFFFFFFF
        if start > len(flow.passed):
            if start < 1 << 31:  # ahead of what came: a gap
                self.counts.gaps += 1
                return DROP
            return self._finish(key, REFUSE)  # before the stream began: not the switch's TCP
        seen = flow.passed[start : start + len(segment.payload)]
        if segment.payload[: len(seen)] != seen:
            log.warning("switch %s sent other bytes where it had sent some before; refused", flow.gate.label)
            return self._finish(key, REFUSE)
        new = segment.payload[len(seen) :]
        if not new:
            return ACCEPT
        if not flow.gate.feed(new):
            return self._finish(key, REFUSE)
        flow.passed += new
        if len(flow.passed) > STREAM_LIMIT:
            log.warning(
                "switch %s: %d bytes and its handshake not acknowledged; refused", flow.gate.label, STREAM_LIMIT
            )
            return self._finish(key, REFUSE)
        if flow.gate.over and flow.end is None:
            flow.end = len(flow.passed)
        return ACCEPT

    def _reply(self, segment: Segment) -> str:
        """A controller's packet to a switch, never held back. The session is
        proven once the controller acknowledges the last byte of the
        handshake the gate checked: its TCP then holds exactly those bytes
        (a segment it threw away, for a stale timestamp or an ACK of data it
        never sent, would have been sent again, and checked against them)."""
        key = (segment.destination, segment.dport, self.vip, segment.sport)
        flow = self.flows.get(key)
        if flow is None or flow.end is None or not segment.flags & ACK_FLAG:
            return ACCEPT
        acknowledged = (segment.ack - flow.base) & 0xFFFFFFFF
        if flow.end <= acknowledged < 1 << 31:
            return self._finish(key, PROVE)
        return ACCEPT

    def expire(self) -> None:
        """Streams stuck in their handshake are refused at their next packet."""
        now = self.clock()
        for key, flow in list(self.flows.items()):
            if now - flow.started > 2 * HANDSHAKE_TIMEOUT:
                self._finish(key, REFUSE)


class Queue:
    """The netlink side of one NFQUEUE."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, 33, 4 << 20)  # SO_RCVBUFFORCE
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((0, 0))
        self._request(attribute(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, 0)))
        self._request(
            attribute(NFQA_CFG_PARAMS, struct.pack("!IB", 0xFFFF, NFQNL_COPY_PACKET))
            + attribute(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", 4096))
        )

    def _request(self, attrs: bytes) -> None:
        self.sock.send(message(NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, self.number, attrs))
        for kind, _, body in messages(self.sock.recv(65536)):
            if kind == NLMSG_ERROR:
                error = -struct.unpack_from("=i", body)[0]
                if error:
                    raise OSError(error, f"NFQUEUE {self.number}: {errno.errorcode.get(error, error)}")

    def packets(self, timeout: float):
        """(packet id, packet) of each packet queued, until `timeout` passes
        with none."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 17)
        except TimeoutError:
            return
        except OSError as exc:
            if exc.errno == errno.ENOBUFS:  # the kernel dropped some; the switches send them again
                log.warning("NFQUEUE %d: the socket overran", self.number)
                return
            raise
        for kind, _, body in messages(data):
            if kind != (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                continue
            attrs = attributes(body[4:])
            if NFQA_PACKET_HDR in attrs and NFQA_PAYLOAD in attrs:
                yield struct.unpack_from("!I", attrs[NFQA_PACKET_HDR])[0], attrs[NFQA_PAYLOAD]

    def verdict(self, packet_id: int, verdict: int, mark: int | None = None) -> None:
        self.sock.send(verdict_message(self.number, packet_id, verdict, mark))


def reset(segment: Segment) -> None:
    """End the switch's side at once: a reset from the address it reached
    (the front VIP), with the sequence number its last segment acknowledged."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP) as sock:
            sock.bind((segment.destination, 0))
            data = tcp_segment(segment.destination, segment.source, segment.dport, segment.sport, segment.ack, 0, RST)
            sock.sendto(data, (segment.source, 0))
    except OSError as exc:
        log.warning("switch %s:%d: reset not sent: %s", segment.source, segment.sport, exc)


def run(args: argparse.Namespace) -> None:
    bindings = Bindings(args.bindings)
    streams = Streams(bindings, time.monotonic() + args.adopt, args.vip)
    queue = Queue(args.queue)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    signal.signal(signal.SIGHUP, lambda *_: bindings.reload())
    log.info("gate on NFQUEUE %d, %d switch addresses bound", args.queue, len(bindings.table))
    marks = {PROVE: args.proven, REFUSE: args.refused}
    while not stop:
        for packet_id, packet in queue.packets(1.0):
            segment = parse(packet)
            answer = ACCEPT if segment is None else streams.answer(segment)
            if answer == ACCEPT:
                queue.verdict(packet_id, NF_ACCEPT)
            elif answer == DROP:
                queue.verdict(packet_id, NF_DROP)
            else:
                queue.verdict(packet_id, NF_ACCEPT, marks[answer])
                if answer == REFUSE:
                    reset(segment)
        streams.expire()
    log.info("gate stopped: %s", streams.counts)


def main(argv: list[str] | None = None) -> None:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    parser = argparse.ArgumentParser(prog="sdn_ha_mirror.gate", description=__doc__.splitlines()[0])
    parser.add_argument("--queue", type=int, required=True, help="the NFQUEUE number the table queues to")
    parser.add_argument("--bindings", required=True, metavar="PATH", help="JSON: switch address -> datapath ids")
    parser.add_argument("--vip", required=True, help="the front VIP: packets to it are the switches'")
    parser.add_argument("--proven", type=lambda t: int(t, 0), required=True, help="the packet mark of a proven session")
    parser.add_argument("--refused", type=lambda t: int(t, 0), required=True, help="the packet mark of a refused one")
    parser.add_argument(
        "--adopt", type=float, default=15.0, help="seconds after start in which unseen sessions are adopted"
    )
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logs.setup(args.log_level)
    try:
        run(args)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"sdn_ha_mirror.gate: {exc}") from exc


if __name__ == "__main__":
    main()
