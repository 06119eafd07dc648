"""Whether this host holds an address right now (the VIP moves with VRRP)."""

from __future__ import annotations

import socket


def holds(address: str) -> bool:
    """True when the kernel routes `address` to this host: the source it picks
    toward a local address is that address. Unlike bind(), this is not fooled
    by net.ipv4.ip_nonlocal_bind, which the LBs set."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((address, 9))
        except OSError:
            return False
        return probe.getsockname()[0] == address
