"""A minimal OpenFlow 1.3 switch emulator: python3 -m sdn_ha_mirror.emulator

Many switch sessions from one process, each from its own source address with
its own datapath id, as a fleet of real switches would open them:

  emulator run --controller 198.18.2.100:6653 --switches FILE [--control SOCK]
  emulator ctl --control SOCK status | packet-in N [ADDRESS ...] | echo | mark [S] | probe [S] | watch [S]

FILE is JSON: a list of {"address", "datapath_id"} (the `switches` filter's
output fits). Each session binds its address (which must be local, or
IP_FREEBIND is used), says HELLO, and answers what a controller asks before
and after it declares the datapath up: FEATURES, PORT_DESC and the other
multipart requests, GET_CONFIG, BARRIER, ECHO and ROLE requests. Writes
(FLOW_MOD, GROUP_MOD, METER_MOD, PACKET_OUT, ...) are counted, not applied.

It reconnects as Open vSwitch's rconn does (lib/rconn.c; `Rconn` below):
an attempt that fails or times out doubles the wait up to --max-backoff, a
session that lasted at least the current backoff waits 1 s, and an idle
session sends an ECHO_REQUEST after --inactivity-probe seconds and drops
after as long again. Every wait counts whole seconds of the switch's own
clock, whose phase is random per switch, as on a fleet of separate machines.

The control socket takes one JSON request a line and answers one JSON line:
  {"cmd": "status"}                                   every session's state
  {"cmd": "packet_in", "count": N, "addresses": [...]} N PACKET_INs from new
                                                      MACs on each session
       (with "same_mac": true, all from one MAC; "padding": B, frames B bytes longer)
  {"cmd": "echo"}                                     an ECHO_REQUEST on each
  {"cmd": "disconnect", "addresses": [...]}           close the sessions (each
                                                      reconnects by the rules above)
  {"cmd": "mark"}                                     start a measurement:
       status gives each switch's `drops` (sessions lost since the mark) and
       `served_at`, the first ECHO_REQUEST answered since the mark on a
       working session (one the controller has written to)
  {"cmd": "probe", "echo_interval": S}                each switch sends those
       echoes every S seconds until one is answered, again after each
       session it loses (0 stops); mark takes echo_interval too
  {"cmd": "watch", "echo_interval": S}                each switch sends an
       ECHO_REQUEST every S seconds on a working session for as long as it
       runs (0 stops); status gives `slowest_echo`, the longest round trip
       since the mark: how long the controller left its switches waiting
       (a config reload, say), without asking the controller itself
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import socket
import ssl
import struct
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from .openflow import OFPT, Framer, FramingError, pack, type_name

OFP13 = 0x04
IP_FREEBIND = 15  # Linux; Python 3.11's socket module has no constant
OFPMP_DESC, OFPMP_PORT_DESC = 0, 13
# Statistics kinds whose reply has a fixed body even with nothing to count.
FIXED_BODIES = {2: 24, 8: 40}  # AGGREGATE (packet, byte, flow counts), GROUP_FEATURES
MAX_PORTS = 1000  # PORT_DESC in one reply: 16 + 64 bytes a port, under 64 KiB
PORT = struct.Struct("!I4x6s2x16sIIIIIIII")  # ofp_port, 64 bytes
OFPPS_LIVE = 4
PROBE_XID, SERVED_XID = 0xE0E0E0E0, 0xE2E2E2E2  # the inactivity probe's and a mark's ECHO_REQUESTs
WATCH_XID = 0xE3000000  # a watch's ECHO_REQUESTs: this plus a 16-bit sequence number
WATCH_OUTSTANDING = 1024  # a watch's unanswered echoes per session, at most (the oldest are what count)
DEFAULT_INTERVAL = {"probe": 0.1, "watch": 0.5}  # seconds between echoes, for ctl without S
WRITES = {OFPT.FLOW_MOD, OFPT.GROUP_MOD, OFPT.METER_MOD, OFPT.PACKET_OUT, OFPT.PORT_MOD, OFPT.TABLE_MOD}


def features_reply(xid: int, dpid: int) -> bytes:
    # datapath_id, n_buffers, n_tables, auxiliary_id, pad, capabilities, reserved
    return pack(OFP13, OFPT.FEATURES_REPLY, xid, struct.pack("!QIBB2xII", dpid, 0, 254, 0, 0x4F, 0))


def port_desc(dpid: int, ports: int) -> bytes:
    body = b""
    for number in range(1, ports + 1):
        mac = struct.pack("!HI", 0x0E00 | (number & 0xFF), dpid & 0xFFFFFFFF)
        name = f"p{number}".encode()
        body += PORT.pack(number, mac, name, 0, OFPPS_LIVE, 0x2820, 0, 0, 0, 10_000_000, 10_000_000)
    return body


def multipart_reply(xid: int, kind: int, dpid: int, ports: int) -> bytes:
    """An answer to any multipart request: DESC and PORT_DESC filled in, the
    statistics kinds empty (a switch with no flows, groups or meters)."""
    if kind == OFPMP_DESC:
        texts = (b"sdn_ha", b"emulator", b"1", f"{dpid:016x}".encode(), b"emulated switch")
        body = b"".join(t.ljust(size, b"\0") for t, size in zip(texts, (256, 256, 256, 32, 256), strict=True))
    elif kind == OFPMP_PORT_DESC:
        body = port_desc(dpid, ports)
    else:
        body = bytes(FIXED_BODIES.get(kind, 0))
    return pack(OFP13, OFPT.MULTIPART_REPLY, xid, struct.pack("!HH4x", kind, 0) + body)


def packet_in(in_port: int, source_mac: bytes, padding: int = 0) -> bytes:
    """A table-miss PACKET_IN carrying an Ethernet frame from `source_mac`."""
    frame = b"\xff" * 6 + source_mac + b"\x88\xb5" + bytes(46 + padding)  # broadcast, local experimental type
    oxm = struct.pack("!II", 0x80000004, in_port)  # OXM_OF_IN_PORT
    match = struct.pack("!HH", 1, 4 + len(oxm)) + oxm + bytes(4)  # ofp_match, padded to 8 bytes
    body = struct.pack("!IHBBQ", 0xFFFFFFFF, len(frame), 0, 0, 0) + match + bytes(2) + frame
    return pack(OFP13, OFPT.PACKET_IN, 0, body)


def answer(message, dpid: int, ports: int) -> bytes | None:
    """What the switch answers to a controller's message, if anything."""
    kind, xid, body = message.type, message.xid, message.body
    if kind == OFPT.FEATURES_REQUEST:
        return features_reply(xid, dpid)
    if kind == OFPT.ECHO_REQUEST:
        return pack(OFP13, OFPT.ECHO_REPLY, xid, body)
    if kind == OFPT.BARRIER_REQUEST:
        return pack(OFP13, OFPT.BARRIER_REPLY, xid)
    if kind == OFPT.GET_CONFIG_REQUEST:
        return pack(OFP13, OFPT.GET_CONFIG_REPLY, xid, struct.pack("!HH", 0, 0xFFFF))
    if kind == OFPT.ROLE_REQUEST:
        return pack(OFP13, OFPT.ROLE_REPLY, xid, body[:16])
    if kind == OFPT.GET_ASYNC_REQUEST:
        return pack(OFP13, OFPT.GET_ASYNC_REPLY, xid, bytes(24))
    if kind == OFPT.MULTIPART_REQUEST and len(body) >= 2:
        return multipart_reply(xid, struct.unpack_from("!H", body)[0], dpid, ports)
    return None


class Rconn:
    """When a switch connects, reconnects and probes, by Open vSwitch's rules
    for a controller connection (lib/rconn.c, which ovs-vswitchd uses; not
    lib/reconnect.c, whose rules differ in detail).

    OVS counts whole seconds of its monotonic clock (time_now()), and a
    state's timeout ends when that clock reaches the second the state was
    entered in plus the timeout. So a 1 s backoff lasts from 0 to 1 s,
    depending on the clock's phase: random per switch here, as on separate
    machines (every bridge of one ovs-vswitchd shares one phase).

    - An attempt starts at once when the switch starts (backoff 0).
    - An attempt times out when the clock reaches its start + max(1, backoff).
    - On a disconnect: if the clock has passed the attempt's start + backoff
      (the session lasted at least the backoff), the backoff is 1 s; else it
      doubles (at least 1), and from max_backoff / 2 on it is max_backoff.
      A timed-out attempt always doubles.
    - A connected session with nothing received for probe_interval (at least
      5 s; 0 disables) sends an ECHO_REQUEST, and drops when another
      probe_interval passes with nothing received.

    Times in and out are seconds of the event loop's clock."""

    def __init__(self, max_backoff: float = 8, probe_interval: float = 5, phase: float | None = None):
        self.max_backoff = max(1, int(max_backoff))
        self.probe_interval = max(5, int(probe_interval)) if probe_interval else 0
        self.phase = random.random() if phase is None else phase
        self.backoff = 0
        self.backoff_deadline = -math.inf
        self.entered = 0  # the whole second the current state was entered in
        self.last_activity = 0

    def clock(self, now: float) -> int:
        return math.floor(now + self.phase)

    def at(self, second: float) -> float:
        """When the switch's clock reaches `second`."""
        return second - self.phase

    def connecting(self, now: float) -> float:
        """An attempt starts; returns when it times out."""
        self.entered = self.clock(now)
        self.backoff_deadline = self.entered + self.backoff
        return self.at(self.entered + max(1, self.backoff))

    def timed_out(self) -> None:
        """The attempt timed out: the next disconnect doubles the backoff."""
        self.backoff_deadline = math.inf

    def connected(self, now: float) -> float:
        """The session is up (HELLO exchanged); returns when to probe it."""
        self.entered = self.last_activity = self.clock(now)
        return self.probe_at()

    def activity(self, now: float) -> float:
        """A message arrived; returns when to probe."""
        self.last_activity = self.clock(now)
        return self.probe_at()

    def probe_at(self) -> float:
        if not self.probe_interval:
            return math.inf
        return self.at(max(self.last_activity, self.entered) + self.probe_interval)

    def idle(self, now: float) -> float:
        """The probe was sent; returns when the session drops unanswered."""
        self.entered = self.clock(now)
        return self.at(self.entered + self.probe_interval)

    def disconnected(self, now: float) -> float:
        """The session or attempt ended; returns when the next attempt starts."""
        second = self.clock(now)
        if second >= self.backoff_deadline:
            self.backoff = 1
        elif self.backoff < self.max_backoff // 2:
            self.backoff = max(1, 2 * self.backoff)
        else:
            self.backoff = self.max_backoff
        self.backoff_deadline = second + self.backoff
        return self.at(second + self.backoff)


@dataclass
class Switch:
    address: str
    datapath_id: int
    ports: int = 1
    writer: asyncio.StreamWriter | None = None
    local_port: int | None = None
    connected_at: float | None = None
    sessions: int = 0  # sessions ever established
    received: Counter = field(default_factory=Counter)
    sent_packet_ins: int = 0
    writes: int = 0
    last_error: str | None = None
    next_mac: int = 0
    first_message_at: float | None = None  # wall clock: the controller's first message on this session
    configured_at: float | None = None  # wall clock: the controller's first write on this session
    rconn: Rconn = field(default_factory=Rconn)
    up: bool = False  # HELLO exchanged: the session is connected, as OVS counts it
    closing: bool = False  # closed on request (ctl disconnect), not lost
    measuring: bool = False  # since the first mark
    served_at: float | None = None  # wall clock: the first echo answered since the mark or the last drop
    drops: int = 0  # sessions lost since the mark
    echo_interval: float = 0.0  # seconds between echoes until served; 0: none
    echo_task: asyncio.Task | None = None
    watch_interval: float = 0.0  # seconds between a watch's echoes; 0: none
    watch_task: asyncio.Task | None = None
    # (xid, monotonic time sent) of the watch's echoes on this session, oldest
    # first: a controller answers in order, so a reply settles the ones before it.
    watch_sent: deque = field(default_factory=deque)
    watch_seq: int = 0
    slowest_echo: float | None = None  # seconds: the longest watched round trip since the mark

    def status(self) -> dict:
        return {
            "address": self.address,
            "datapath_id": hex(self.datapath_id),
            "connected": self.up,
            "local_port": self.local_port,
            "age": round(time.monotonic() - self.connected_at, 3) if self.connected_at else None,
            "sessions": self.sessions,
            "received": {type_name(k): v for k, v in self.received.items()},
            "packet_ins": self.sent_packet_ins,
            "writes": self.writes,
            "first_message_at": self.first_message_at,
            "configured_at": self.configured_at,
            "served_at": self.served_at,
            "drops": self.drops,
            "slowest_echo": None if self.slowest_echo is None else round(self.slowest_echo, 4),
            "backoff": self.rconn.backoff,
            "last_error": self.last_error,
        }

    def watched(self, xid: int) -> None:
        """A watch's echo was answered: its round trip (and the earlier ones'
        that got none, which waited as long at least)."""
        now = time.monotonic()
        while self.watch_sent:
            sent_xid, sent = self.watch_sent.popleft()
            self.slowest_echo = max(self.slowest_echo or 0.0, now - sent)
            if sent_xid == xid:
                break

    def unwatched(self) -> None:
        """The session ended: its unanswered echoes waited until now."""
        if self.watch_sent:
            self.slowest_echo = max(self.slowest_echo or 0.0, time.monotonic() - self.watch_sent[0][1])
        self.watch_sent.clear()

    def send(self, data: bytes) -> bool:
        if self.writer is None or self.writer.is_closing():
            return False
        self.writer.write(data)
        return True

    def packet_ins(self, count: int, same_mac: bool = False, padding: int = 0) -> int:
        """`count` PACKET_INs, each from a new MAC (each one a host to learn)
        or all from one (cheap for the controller), their frames padded by
        `padding` bytes."""
        sent = 0
        for _ in range(count):
            if not same_mac or not self.next_mac:
                self.next_mac += 1
            mac = struct.pack("!HI", 0x0200 | (self.datapath_id & 0xFF), self.next_mac & 0xFFFFFFFF)
            if not self.send(packet_in(1, mac, padding)):
                break
            sent += 1
        self.sent_packet_ins += sent
        return sent


class Emulator:
    def __init__(self, controller: tuple[str, int], switches: list[Switch], args: argparse.Namespace):
        self.controller = controller
        self.switches = {s.address: s for s in switches}
        for switch in switches:
            switch.rconn = Rconn(args.max_backoff, args.inactivity_probe, switch.rconn.phase)
        self.args = args
        self.started_at = time.time()  # wall clock: every switch starts its first attempt now
        self.tls: ssl.SSLContext | None = None
        if getattr(args, "tls_cert", None):
            # As OVS with ssl: targets: the controller's certificate must be
            # signed by the CA (no name is checked), and the switch shows its own.
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self.tls.check_hostname = False
            self.tls.load_verify_locations(cafile=args.tls_ca)
            self.tls.load_cert_chain(args.tls_cert, args.tls_key)

    async def connect(self, switch: Switch, deadline: float):
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        try:
            sock.bind((switch.address, 0))
            await asyncio.wait_for(loop.sock_connect(sock, self.controller), max(deadline - loop.time(), 0))
        except BaseException:
            sock.close()
            raise
        if self.tls is None:
            return await asyncio.open_connection(sock=sock)
        return await asyncio.wait_for(
            asyncio.open_connection(sock=sock, ssl=self.tls, server_hostname=""), max(deadline - loop.time(), 0.1)
        )

    async def session(self, switch: Switch, reader, writer, deadline: float) -> None:
        """One connection: CONNECTING until the controller's HELLO (or the
        deadline), then connected, with the inactivity probe."""
        loop, framer, fsm = asyncio.get_running_loop(), Framer(), switch.rconn
        switch.writer, switch.local_port = writer, writer.get_extra_info("sockname")[1]
        switch.first_message_at = switch.configured_at = None
        writer.write(pack(OFP13, OFPT.HELLO, 0))
        idle = False
        while True:
            try:
                data = await asyncio.wait_for(reader.read(65536), max(deadline - loop.time(), 0))
            except TimeoutError:
                if not switch.up:
                    fsm.timed_out()
                    raise TimeoutError("connection timed out") from None
                if idle:
                    raise ConnectionError(f"no response to inactivity probe after {fsm.probe_interval} s") from None
                writer.write(pack(OFP13, OFPT.ECHO_REQUEST, PROBE_XID))
                idle, deadline = True, fsm.idle(loop.time())
                continue
            if not data:
                raise ConnectionError("closed by the controller")
            now, wall = loop.time(), time.time()
            if switch.first_message_at is None:
                switch.first_message_at = wall
            for message in framer.feed(data):
                switch.received[message.type] += 1
                if message.type == OFPT.HELLO and not switch.up:
                    switch.up, switch.connected_at, switch.sessions = True, time.monotonic(), switch.sessions + 1
                    fsm.connected(now)
                elif message.type in WRITES:
                    switch.writes += 1
                    if switch.configured_at is None:
                        switch.configured_at = wall
                        if switch.echo_interval and switch.served_at is None:
                            writer.write(pack(OFP13, OFPT.ECHO_REQUEST, SERVED_XID))
                elif message.type == OFPT.ECHO_REPLY and message.xid == SERVED_XID:
                    if switch.served_at is None and switch.measuring:
                        switch.served_at = wall
                elif message.type == OFPT.ECHO_REPLY and message.xid & 0xFFFF0000 == WATCH_XID:
                    switch.watched(message.xid)
                elif (reply := answer(message, switch.datapath_id, switch.ports)) is not None:
                    writer.write(reply)
            if switch.up:
                idle, deadline = False, fsm.activity(now)
            await writer.drain()

    async def run_switch(self, switch: Switch) -> None:
        loop, fsm = asyncio.get_running_loop(), switch.rconn
        while True:
            writer = None
            deadline = fsm.connecting(loop.time())
            try:
                reader, writer = await self.connect(switch, deadline)
                await self.session(switch, reader, writer, deadline)
            except (OSError, ConnectionError, FramingError, ssl.SSLError) as exc:
                # TimeoutError is an OSError: an attempt that got no HELLO in
                # time, or an established session's ETIMEDOUT, which is a drop.
                switch.last_error = str(exc) or type(exc).__name__
                if isinstance(exc, TimeoutError) and not switch.up:
                    fsm.timed_out()
                    switch.last_error = str(exc) or "connection timed out"
                elif switch.up and not switch.closing and switch.measuring:
                    switch.drops += 1
                    switch.served_at = None  # served again only on a session that works
                    self.serve(switch)
            ended = loop.time()  # as OVS: the disconnect counts when it fails, not once closed
            if writer is not None:
                writer.close()  # not awaited: over TLS a dead peer's close_notify may take 30 s
            switch.unwatched()  # a lost session's echoes are never answered: they waited until now
            switch.writer, switch.connected_at, switch.up, switch.closing = None, None, False, False
            await asyncio.sleep(max(fsm.disconnected(ended) - loop.time(), 0))

    async def echo_until_served(self, switch: Switch) -> None:
        """An ECHO_REQUEST every echo_interval on a working session (one the
        controller has written to) until one is answered."""
        try:
            while switch.echo_interval and switch.served_at is None:
                if switch.up and switch.configured_at is not None:
                    switch.send(pack(OFP13, OFPT.ECHO_REQUEST, SERVED_XID))
                await asyncio.sleep(switch.echo_interval)
        finally:
            switch.echo_task = None

    async def echo_while_watched(self, switch: Switch) -> None:
        """An ECHO_REQUEST every watch_interval on a working session, each
        timed from its send to its reply."""
        try:
            # Each switch at its own phase, as separate machines: a stall then
            # starts within milliseconds of some switch's echo.
            await asyncio.sleep(random.uniform(0, switch.watch_interval))
            while switch.watch_interval:
                if switch.up and switch.configured_at is not None:
                    switch.watch_seq = (switch.watch_seq + 1) & 0xFFFF
                    xid = WATCH_XID | switch.watch_seq
                    if len(switch.watch_sent) < WATCH_OUTSTANDING and switch.send(pack(OFP13, OFPT.ECHO_REQUEST, xid)):
                        switch.watch_sent.append((xid, time.monotonic()))
                await asyncio.sleep(switch.watch_interval)
        finally:
            switch.watch_task = None

    def watch(self, echo_interval: float) -> dict:
        """Each switch echoes every echo_interval for as long as it runs,
        keeping its slowest round trip; 0 stops."""
        loop = asyncio.get_running_loop()
        for switch in self.switches.values():
            switch.watch_interval = echo_interval
            if echo_interval and switch.watch_task is None:
                switch.watch_task = loop.create_task(self.echo_while_watched(switch))
        return {"watching_at": time.time(), "echo_interval": echo_interval}

    def serve(self, switch: Switch) -> None:
        if switch.echo_interval and switch.served_at is None and switch.echo_task is None:
            switch.echo_task = asyncio.get_running_loop().create_task(self.echo_until_served(switch))

    def mark(self, echo_interval: float) -> dict:
        """Start a measurement: served and drops start again, and with an
        echo interval each switch echoes until it is served."""
        for switch in self.switches.values():
            switch.served_at, switch.drops, switch.measuring, switch.echo_interval = None, 0, True, 0.0
            switch.slowest_echo = None
        return {"marked_at": time.time(), **self.probe(echo_interval)}

    def probe(self, echo_interval: float) -> dict:
        """Each switch echoes every echo_interval until it is served (again,
        after each session it loses); 0 stops."""
        for switch in self.switches.values():
            switch.echo_interval = echo_interval
            self.serve(switch)
        return {"probing_at": time.time(), "echo_interval": echo_interval}

    def control(self, request: dict) -> dict:
        cmd = request.get("cmd")
        chosen = [self.switches[a] for a in request.get("addresses") or self.switches if a in self.switches]
        if cmd == "status":
            return {"started_at": self.started_at, "switches": [s.status() for s in self.switches.values()]}
        if cmd == "packet_in":
            count, same, padding = (
                int(request.get("count", 1)),
                bool(request.get("same_mac")),
                int(request.get("padding", 0)),
            )
            return {"sent": {s.address: s.packet_ins(count, same, min(max(padding, 0), 1400)) for s in chosen}}
        if cmd == "echo":
            return {"sent": {s.address: s.send(pack(OFP13, OFPT.ECHO_REQUEST, 0xE1E1E1E1)) for s in chosen}}
        if cmd == "disconnect":
            closed = {}
            for s in chosen:
                closed[s.address] = s.writer is not None
                if s.writer is not None:
                    s.closing = True
                    s.writer.close()
            return {"closed": closed}
        if cmd in ("mark", "probe", "watch"):
            interval = float(request.get("echo_interval", 0 if cmd == "mark" else DEFAULT_INTERVAL[cmd]))
            if not 0 <= interval <= 3600:
                return {"error": f"echo_interval {interval}: seconds, 0 to 3600"}
            return {"mark": self.mark, "probe": self.probe, "watch": self.watch}[cmd](interval)
        return {"error": f"unknown command {cmd!r}; known: status, packet_in, echo, disconnect, mark, probe, watch"}

    async def serve_control(self, reader, writer) -> None:
        try:
            while line := await reader.readline():
                try:
                    reply = self.control(json.loads(line))
                except (ValueError, TypeError, AttributeError) as exc:
                    reply = {"error": str(exc)}
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        finally:
            writer.close()

    async def run(self) -> None:
        self.started_at = time.time()
        if self.args.control:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.args.control)
            await asyncio.start_unix_server(self.serve_control, self.args.control)
        await asyncio.gather(*(self.run_switch(s) for s in self.switches.values()))


def ctl(path: str, request: dict) -> dict:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(path)
        sock.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sdn_ha_mirror.emulator", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the emulated switches")
    run.add_argument("--controller", required=True, help="HOST:PORT, the front VIP")
    run.add_argument("--switches", required=True, help="JSON file: [{address, datapath_id}, ...]")
    run.add_argument("--control", help="UNIX socket for status and commands")
    run.add_argument("--ports", type=int, default=1, help=f"ports per switch, numbered from 1 (at most {MAX_PORTS})")
    run.add_argument(
        "--inactivity-probe", type=int, default=5, help="whole seconds, at least 5 (0: off), as OVS's inactivity_probe"
    )
    run.add_argument("--max-backoff", type=int, default=8, help="whole seconds, as OVS's max_backoff")
    run.add_argument("--tls-cert", metavar="PATH", help="connect over TLS with this certificate (PEM)")
    run.add_argument("--tls-key", metavar="PATH", help="its private key (PEM)")
    run.add_argument("--tls-ca", metavar="PATH", help="the CA (PEM) the controller's certificate is signed by")
    control = sub.add_parser("ctl", help="ask a running emulator")
    control.add_argument("--control", required=True)
    control.add_argument("--same-mac", action="store_true", help="packet-in: every frame from one MAC")
    control.add_argument("--padding", type=int, default=0, help="packet-in: bytes added to each frame")
    control.add_argument(
        "request",
        nargs="+",
        help="status | packet-in N [ADDRESS ...] | echo | disconnect [ADDRESS ...] | mark [S] | probe [S] | watch [S]",
    )
    args = parser.parse_args(argv)
    if args.command == "ctl":
        cmd, *rest = args.request
        request: dict = {"cmd": cmd.replace("-", "_")}
        if cmd == "packet-in":
            request.update(count=int(rest[0]), addresses=rest[1:], same_mac=args.same_mac, padding=args.padding)
        elif cmd == "disconnect":
            request.update(addresses=rest)
        elif cmd in ("mark", "probe", "watch"):
            request.update(echo_interval=float(rest[0]) if rest else DEFAULT_INTERVAL.get(cmd, 0.0))
        print(json.dumps(ctl(args.control, request), indent=1))
        return 0
    if any([args.tls_cert, args.tls_key, args.tls_ca]) and not all([args.tls_cert, args.tls_key, args.tls_ca]):
        parser.error("TLS needs --tls-cert, --tls-key and --tls-ca together")
    if not 1 <= args.ports <= MAX_PORTS:
        parser.error(f"--ports must be 1-{MAX_PORTS}: PORT_DESC must fit one OpenFlow message")
    host, _, port = args.controller.rpartition(":")
    with open(args.switches) as handle:
        spec = json.load(handle)
    switches = [Switch(s["address"], int(str(s["datapath_id"]), 0), args.ports) for s in spec]
    asyncio.run(Emulator((host, int(port)), switches, args).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
