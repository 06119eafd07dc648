"""The OpenFlow conversation of the loopback benchmarks (relay.py and
capture.py), built with the sidecar's own code: its framing
(sdn_ha_mirror.openflow) and its switch emulator's messages.

A backup controller opens with HELLO, FEATURES_REQUEST and a PORT_DESC
request; the switch answers both, then sends a command: an ECHO_REQUEST
whose body is a mode byte and a count, which tells the benchmark's
controller what to do next (sink that many bytes, answer every PACKET_IN,
or idle). Every PACKET_IN and PACKET_OUT is MESSAGE bytes long.
"""

from __future__ import annotations

import socket
import struct

from sdn_ha_mirror.emulator import features_reply, multipart_reply
from sdn_ha_mirror.openflow import HEADER_LEN, OFPT, pack

OFP13 = 4
OFPMP_PORT_DESC = 13
MESSAGE = 128
DPID = 0  # the benchmarks' one datapath; no identity check runs there


def of(kind: OFPT, xid: int = 0, body: bytes = b"") -> bytes:
    """One OpenFlow 1.3 message."""
    return pack(OFP13, kind, xid, body)


HELLO = of(OFPT.HELLO, 1)
BACKUP_HANDSHAKE = (
    HELLO + of(OFPT.FEATURES_REQUEST, 100) + of(OFPT.MULTIPART_REQUEST, 101, struct.pack("!HH4x", OFPMP_PORT_DESC, 0))
)
SWITCH_HANDSHAKE = features_reply(100, DPID) + multipart_reply(101, OFPMP_PORT_DESC, DPID, 1)
COMMAND_LEN = HEADER_LEN + 9
BARRIER = of(OFPT.BARRIER_REQUEST, 1)
PACKET_IN = of(OFPT.PACKET_IN, 0, bytes(MESSAGE - HEADER_LEN))
PACKET_OUT = of(OFPT.PACKET_OUT, 0, bytes(MESSAGE - HEADER_LEN))
# A PACKET_IN or PACKET_OUT is its head, its xid (4 bytes) and BODY: the
# senders that number their messages splice the xid in.
PACKET_IN_HEAD, PACKET_OUT_HEAD = PACKET_IN[:4], PACKET_OUT[:4]
BODY = PACKET_IN[HEADER_LEN:]


def command(mode: bytes, count: int) -> bytes:
    """The switch's command to the benchmark's controller (COMMAND_LEN bytes)."""
    return of(OFPT.ECHO_REQUEST, 2, mode + count.to_bytes(8, "big"))


def read_command(data: bytes) -> tuple[bytes, int]:
    """A command's mode and count."""
    body = data[HEADER_LEN:]
    return body[:1], int.from_bytes(body[1:], "big")


def recv_exact(sock: socket.socket, size: int) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            raise ConnectionError("peer closed")
        buf += chunk
    return bytes(buf)
