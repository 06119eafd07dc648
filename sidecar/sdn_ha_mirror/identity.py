"""Which datapath ids each switch address may claim.

The inventory binds every switch's datapath id to its address (the
collection's `switches` filter). A controller that gets a FEATURES_REPLY
claiming a datapath id it already serves drops the session it had, so a host
that may reach the VIP could take any switch's controller away by claiming
its id. A Gate therefore follows each switch's stream from its first byte
until the controller's handshake is over, and every FEATURES_REPLY in it
must claim a datapath id bound to the session's source address: any other
claim refuses the session before the controller has it whole. The relay
(proxy mode with TLS) and the identity gate (gate.py, every other case) use
it alike, and so does the capture's tap, which mirrors nothing of a refused
claim.

The bindings file is JSON, each address to the datapath ids it may claim:

    {"198.18.1.10": ["0x1"], "198.18.1.100": ["0x1000"]}

SIGHUP reads it again; a file that cannot be read keeps the bindings in force.
"""

from __future__ import annotations

import json
import logging

from .openflow import OFPT

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


GATE_LIMIT = 1 << 16  # bytes a switch may send before its FEATURES_REPLY
HANDSHAKE_LIMIT = 1 << 18  # bytes a switch may send before the handshake is over


OFP13 = 4  # the OpenFlow version the controllers speak (Faucet: 1.3 only)
PORT_DESC = b"\x00\x0d"  # ofp_multipart_reply.type OFPMP_PORT_DESC


class Gate:
    """One switch's stream, checked from its first byte until the
    controller's handshake is over.

    The stream must look as the controller reads it: a HELLO first (os-ken
    ignores anything before one), then only messages of the version the
    controllers speak (os-ken parses a message by its own version byte, so a
    FEATURES_REPLY of another version would reach it too). Each
    FEATURES_REPLY must claim a datapath id bound to the switch's address,
    the same one each time (a controller in its handshake takes the last one
    it got). The handshake is over, for os-ken and so Faucet in OpenFlow 1.3,
    with the last part of the switch's PORT_DESC reply after a proven
    FEATURES_REPLY: the controller is then in its main state, where a
    FEATURES_REPLY is ignored, and nothing more is checked.

    A message is checked when its last byte comes, so bytes may go on as
    they come: the controller acts on no message before it has all of it,
    and the bytes that would complete a refused claim never go on."""

    def __init__(self, bindings: Bindings, address: str, label: str | None = None, version: int = OFP13) -> None:
        self.bindings, self.address, self.label, self.version = bindings, address, label or address, version
        self.partial = bytearray()  # the start of a message whose end has not come yet
        self.datapath_id: int | None = None  # the id the switch proved
        self.hello = False  # the stream began with a HELLO
        self.seen = 0  # bytes of the stream so far
        self.over = False  # the handshake is over: everything may go on
        self.refusal = ""  # why the session was refused

    def feed(self, data: bytes) -> bool:
        """Whether `data`, the next bytes of the stream, may go on to the
        controller. False: the session is refused (logged, and counted if it
        claimed an id it may not), and nothing more of it may go on."""
        if self.over:
            return True
        if self.refusal:
            return False
        buffer = self.partial
        buffer += data
        self.seen += len(data)
        offset, size = 0, len(buffer)
        while size - offset >= 8:
            version, kind = buffer[offset], buffer[offset + 1]
            length = int.from_bytes(buffer[offset + 2 : offset + 4], "big")
            if length < 8 or not 1 <= version <= 6:  # OpenFlow 1.0 to 1.5
                return self._refuse("sent bytes that are not OpenFlow")
            if not self.hello and kind != OFPT.HELLO:
                return self._refuse(f"sent message type {kind} before its HELLO")
            if self.hello and version != self.version:
                return self._refuse(f"sent an OpenFlow {version:#x} message in a {self.version:#x} handshake")
            if size - offset < length:
                break
            self.hello = True
            if kind == OFPT.FEATURES_REPLY and not self._proven(bytes(buffer[offset : offset + length])):
                return False
            if (
                self.datapath_id is not None
                and kind == OFPT.MULTIPART_REPLY
                and length >= 16
                and buffer[offset + 8 : offset + 10] == PORT_DESC
                and not buffer[offset + 11] & 1  # not OFPMPF_REPLY_MORE
            ):
                self.over = True
                self.partial = bytearray()
                return True
            offset += length
        del buffer[:offset]
        if self.datapath_id is None and self.seen > GATE_LIMIT:
            return self._refuse(f"sent {self.seen} bytes and no FEATURES_REPLY")
        if self.seen > HANDSHAKE_LIMIT:
            return self._refuse(f"sent {self.seen} bytes and did not end its handshake")
        return True

    def _proven(self, message: bytes) -> bool:
        """Whether the datapath id this FEATURES_REPLY claims is bound to the
        switch's address and, after the first, the one it proved."""
        dpid = int.from_bytes(message[8:16], "big") if len(message) >= 16 else None
        if dpid is not None and self.bindings.allows(self.address, dpid) and self.datapath_id in (None, dpid):
            self.datapath_id = dpid
            return True
        self.bindings.refused += 1
        self._refuse(
            "claimed datapath id {}, but its address is bound to {}{}".format(
                "none" if dpid is None else f"{dpid:#x}",
                self.bindings.bound_to(self.address),
                "" if self.datapath_id is None else f" and it proved {self.datapath_id:#x}",
            )
        )
        return False

    def _refuse(self, why: str) -> bool:
        self.refusal = why
        self.partial = bytearray()
        log.warning("switch %s %s: session refused", self.label, why)
        return False
