"""Ending a switch's session from the LB without knowing its sequence numbers.

When a backup dies, the LB deletes the connection-table entries of its
sessions; the switches would only notice at their next message, after their
echo interval. So the LB sends each of them a bare ACK from the front VIP
with a sequence number far outside the window. The switch's TCP answers an
unacceptable segment with an ACK of its own (RFC 793, 5961), carrying the
exact sequence number it expects. That ACK meets no connection-table entry
at the LB (it is not translated), reaches the LB's own TCP stack, which has
no such socket, and is answered with a reset whose sequence number is
exactly right. The switch reconnects at once, to a healthy backup.

Needs CAP_NET_RAW, and the VIP on this host (the source address).
"""

from __future__ import annotations

import random
import socket
import struct

from .local import holds

RST, ACK = 0x04, 0x10


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def tcp_segment(source: str, destination: str, sport: int, dport: int, seq: int, ack: int, flags: int) -> bytes:
    """A TCP header (no options, no payload) with the checksum filled in."""
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 0xFFFF, 0, 0)
    pseudo = socket.inet_aton(source) + socket.inet_aton(destination) + struct.pack("!BBH", 0, socket.IPPROTO_TCP, 20)
    return header[:16] + struct.pack("!H", checksum(pseudo + header)) + header[18:]


def challenge_segment(source: str, destination: str, sport: int, dport: int, seq: int | None = None) -> bytes:
    """A bare ACK far outside any window."""
    seq = random.getrandbits(32) if seq is None else seq
    return tcp_segment(source, destination, sport, dport, seq, random.getrandbits(32), ACK)


def challenge(vip: str, sessions: list[tuple[str, int, int]]) -> int:
    """Send the challenge ACK to each (switch, switch port, VIP port); the
    number sent. Nothing is sent when this host does not hold the VIP."""
    sent = 0
    if not holds(vip):
        return 0
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP) as sock:
        sock.bind((vip, 0))
        for switch, sport, vip_port in sessions:
            try:
                sock.sendto(challenge_segment(vip, switch, vip_port, sport), (switch, 0))
                sent += 1
            except OSError:
                pass
    return sent


def parse_resets(text: str) -> list[tuple[str, int, int]]:
    """The "RESET SWITCH SPORT DPORT" lines of the NAT hook's output."""
    sessions = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[0] == "RESET" and fields[2].isdigit() and fields[3].isdigit():
            sessions.append((fields[1], int(fields[2]), int(fields[3])))
    return sessions
