"""Whether this host holds an address right now (the VIP moves with VRRP)."""

from __future__ import annotations

import re

FIB_TRIE = "/proc/net/fib_trie"


def holds(address: str, fib_trie: str = FIB_TRIE) -> bool:
    """True when `address` is in the kernel's local table (a /32 host LOCAL
    route): the host accepts packets for it. Unlike a bind() test this is not
    fooled by net.ipv4.ip_nonlocal_bind, which the LBs set, and it needs no
    netlink socket."""
    try:
        with open(fib_trie) as handle:
            text = handle.read()
    except OSError:
        return False
    pattern = rf"\|-- {re.escape(address)}\n(?:[ \t]+/[^\n]*\n)*?[ \t]+/32 host LOCAL\n"
    return re.search(pattern, text) is not None
