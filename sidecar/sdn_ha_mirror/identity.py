"""Which datapath ids each switch address may claim.

The inventory binds every switch's datapath id to its address (the
collection's `switches` filter). A controller that gets a FEATURES_REPLY
claiming a datapath id it already serves drops the session it had, so a host
that may reach the VIP could take any switch's controller away by claiming
its id. The relay therefore holds a switch's bytes, message by message,
until its FEATURES_REPLY: a datapath id bound to the session's source
address opens the session, any other refuses it before the controller sees
the claim.

The bindings file is JSON, each address to the datapath ids it may claim:

    {"198.18.1.10": ["0x1"], "198.18.1.100": ["0x1000"]}

SIGHUP reads it again; a file that cannot be read keeps the bindings in force.
"""

from __future__ import annotations

import json
import logging

log = logging.getLogger("sdn_ha_mirror")


class Bindings:
    def __init__(self, path: str) -> None:
        self.path = path
        self.table: dict[str, frozenset[int]] = self._read()
        self.refused = 0  # sessions refused for a datapath id not bound to their address

    def _read(self) -> dict[str, frozenset[int]]:
        with open(self.path, encoding="utf-8") as handle:
            raw = json.load(handle)
        if not isinstance(raw, dict):
            raise ValueError(f"{self.path}: expected an object of address -> datapath ids")
        table = {}
        for address, ids in raw.items():
            if not isinstance(ids, list):
                raise ValueError(f"{self.path}: {address}: expected a list of datapath ids, got {ids!r}")
            table[str(address)] = frozenset(int(str(i), 0) for i in ids)
        return table

    def reload(self) -> None:
        try:
            self.table = self._read()
        except (OSError, ValueError) as exc:
            log.error("bindings: %s; keeping the %d addresses in force", exc, len(self.table))
            return
        log.info("bindings: %d addresses from %s", len(self.table), self.path)

    def allows(self, address: str, datapath_id: int) -> bool:
        return datapath_id in self.table.get(address, ())

    def bound_to(self, address: str) -> str:
        ids = sorted(self.table.get(address, ()))
        return ", ".join(f"{i:#x}" for i in ids) or "nothing"
