"""The master's side of the shadow session: every master->switch message is
answered from what the primary session has shown, or swallowed. None of
the master's messages ever reaches a switch."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import ClassVar

from .openflow import HEADER_LEN, OFPT, Message, multipart_type, pack

OFPMP_DESC = 0
OFPMP_PORT_DESC = 13
OFPMP_EXPERIMENTER = 0xFFFF
# The multipart kinds OpenFlow 1.0-1.5 define (0-19, and EXPERIMENTER): the
# only ones the view keeps, so a switch cannot grow it with kinds of its own.
MULTIPART_KINDS = frozenset(range(20)) | {OFPMP_EXPERIMENTER}
# The most bytes of replies a view keeps; a reply that would go past it is
# not kept (the master's request for it gets an error, as for any reply
# nothing is cached for).
VIEW_LIMIT = 1 << 19
OFPET_BAD_REQUEST = 1
OFPBRC_BAD_TYPE = 1
OFPBRC_BAD_MULTIPART = 2

# The master's would-be writes: counted and logged as an audit, never sent.
SWALLOWED = {
    OFPT.SET_CONFIG,
    OFPT.FLOW_MOD,
    OFPT.GROUP_MOD,
    OFPT.METER_MOD,
    OFPT.PORT_MOD,
    OFPT.TABLE_MOD,
    OFPT.PACKET_OUT,
    OFPT.SET_ASYNC,
}


def with_xid(data: bytes, xid: int) -> bytes:
    return data[:4] + struct.pack("!I", xid) + data[HEADER_LEN:]


@dataclass
class SwitchView:
    """The latest reply of each kind the switch sent on the primary session."""

    # The multipart kinds that describe the switch rather than its counters
    # (DESC, GROUP_FEATURES, METER_FEATURES, TABLE_FEATURES, PORT_DESC): what
    # the view shares with the peer LB.
    SHARED_MULTIPART: ClassVar[frozenset[int]] = frozenset({0, 8, 11, 12, 13})

    version: int = 0
    features: bytes | None = None
    config: bytes | None = None
    multipart: dict[int, bytes] = field(default_factory=dict)
    generation: int = 0  # bumped whenever a shared part changes
    refused: int = 0  # replies not kept: an unknown kind, or past VIEW_LIMIT

    def learn(self, message: Message) -> None:
        """Keep a switch->controller reply; the primary session negotiated the version."""
        if message.type == OFPT.HELLO:
            if not self.version:  # the highest the switch offers, until a later message shows the agreed one
                self.version = message.version
                self.generation += 1
            return
        if message.version != self.version:  # every message after the HELLOs carries the negotiated version
            self.version = message.version
            self.generation += 1
        if message.type == OFPT.FEATURES_REPLY:
            if message.data != self.features:
                self.features = message.data
                self.generation += 1
        elif message.type == OFPT.GET_CONFIG_REPLY:
            if message.data != self.config:
                self.config = message.data
                self.generation += 1
        elif message.type == OFPT.MULTIPART_REPLY:
            kind = multipart_type(message)
            if kind is None:
                return
            if (
                kind not in MULTIPART_KINDS
                or self.size - len(self.multipart.get(kind, b"")) + len(message.data) > VIEW_LIMIT
            ):
                self.refused += 1
                return
            if kind in self.SHARED_MULTIPART and self.multipart.get(kind) != message.data:
                self.generation += 1
            self.multipart[kind] = message.data

    @property
    def size(self) -> int:
        """The bytes of replies the view keeps."""
        return len(self.features or b"") + len(self.config or b"") + sum(map(len, self.multipart.values()))

    @property
    def ready(self) -> bool:
        """The shadow session opens only once these are known."""
        return bool(self.version and self.features and OFPMP_PORT_DESC in self.multipart)


@dataclass
class Answer:
    replies: list[bytes]
    swallowed: bool = False
    unanswered: bool = False  # nothing cached for it: the caller decides


def answer(view: SwitchView, message: Message) -> Answer:
    """What the sidecar sends back to the master for one of its messages."""
    t, xid, version = message.type, message.xid, view.version or message.version
    if t == OFPT.HELLO:
        return Answer([pack(version, OFPT.HELLO, xid)])
    if t == OFPT.ECHO_REQUEST:
        return Answer([pack(version, OFPT.ECHO_REPLY, xid, message.body)])
    if t == OFPT.BARRIER_REQUEST:
        return Answer([pack(version, OFPT.BARRIER_REPLY, xid)])
    if t == OFPT.ROLE_REQUEST:
        # Grant the requested role and generation id; the switch never sees it.
        return Answer([pack(version, OFPT.ROLE_REPLY, xid, message.body[:16])])
    if t == OFPT.FEATURES_REQUEST:
        return _cached(view.features, xid)
    if t == OFPT.GET_CONFIG_REQUEST:
        return _cached(view.config, xid)
    if t == OFPT.MULTIPART_REQUEST:
        return _cached(view.multipart.get(multipart_type(message)), xid)
    if t in SWALLOWED:
        return Answer([], swallowed=True)
    return Answer([], unanswered=True)


def _cached(data: bytes | None, xid: int) -> Answer:
    return Answer([with_xid(data, xid)]) if data else Answer([], unanswered=True)


def unavailable(view: SwitchView, message: Message) -> bytes:
    """The ERROR that ends a master request nothing in the cache answered:
    BAD_REQUEST carrying the request's first 64 bytes, as the spec asks."""
    code = OFPBRC_BAD_MULTIPART if message.type == OFPT.MULTIPART_REQUEST else OFPBRC_BAD_TYPE
    body = struct.pack("!HH", OFPET_BAD_REQUEST, code) + message.data[:64]
    return pack(view.version or message.version, OFPT.ERROR, message.xid, body)
