"""OpenFlow framing and message classification, shared by the sidecar and
the health prober. Standard library only."""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterator
from dataclasses import dataclass

HEADER = struct.Struct("!BBHI")  # version, type, length, xid
HEADER_LEN = HEADER.size
MAX_MESSAGE = 0xFFFF


class OFPT(enum.IntEnum):
    """OpenFlow 1.3 message types (the numbering is shared by 1.4 and 1.5)."""

    HELLO = 0
    ERROR = 1
    ECHO_REQUEST = 2
    ECHO_REPLY = 3
    EXPERIMENTER = 4
    FEATURES_REQUEST = 5
    FEATURES_REPLY = 6
    GET_CONFIG_REQUEST = 7
    GET_CONFIG_REPLY = 8
    SET_CONFIG = 9
    PACKET_IN = 10
    FLOW_REMOVED = 11
    PORT_STATUS = 12
    PACKET_OUT = 13
    FLOW_MOD = 14
    GROUP_MOD = 15
    PORT_MOD = 16
    TABLE_MOD = 17
    MULTIPART_REQUEST = 18
    MULTIPART_REPLY = 19
    BARRIER_REQUEST = 20
    BARRIER_REPLY = 21
    QUEUE_GET_CONFIG_REQUEST = 22
    QUEUE_GET_CONFIG_REPLY = 23
    ROLE_REQUEST = 24
    ROLE_REPLY = 25
    GET_ASYNC_REQUEST = 26
    GET_ASYNC_REPLY = 27
    SET_ASYNC = 28
    METER_MOD = 29


class FramingError(ValueError):
    """The byte stream is not OpenFlow: the session must be closed."""


@dataclass(frozen=True)
class Message:
    version: int
    type: int
    xid: int
    data: bytes  # the whole message, header included

    @property
    def body(self) -> bytes:
        return self.data[HEADER_LEN:]


def pack(version: int, msg_type: int, xid: int, body: bytes = b"") -> bytes:
    length = HEADER_LEN + len(body)
    if length > MAX_MESSAGE:
        raise ValueError(f"message of {length} bytes is longer than OpenFlow allows")
    return HEADER.pack(version, msg_type, length, xid) + body


class Framer:
    """Cuts a TCP byte stream into whole OpenFlow messages, whatever the
    segment boundaries. Bytes of an incomplete message stay buffered."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[Message]:
        self._buffer += data
        while len(self._buffer) >= HEADER_LEN:
            version, msg_type, length, xid = HEADER.unpack_from(self._buffer)
            if length < HEADER_LEN:
                raise FramingError(f"message length {length} is shorter than the header")
            if version == 0 or version > 0x06:
                raise FramingError(f"OpenFlow version {version:#x} is unknown")
            if len(self._buffer) < length:
                return
            data_ = bytes(self._buffer[:length])
            del self._buffer[:length]
            yield Message(version, msg_type, xid, data_)

    @property
    def pending(self) -> int:
        """Bytes held back, waiting for the rest of a message."""
        return len(self._buffer)


class Route(enum.Enum):
    """What the sidecar does with a switch->controller message."""

    MIRROR = "mirror"  # asynchronous: the master must see it
    CACHE = "cache"  # a reply to the backup: kept, never forwarded
    FILTER = "filter"  # handshake and keepalive traffic of the primary session


ASYNC = {OFPT.PACKET_IN, OFPT.PORT_STATUS, OFPT.FLOW_REMOVED}
CACHED_REPLIES = {
    OFPT.FEATURES_REPLY,
    OFPT.MULTIPART_REPLY,
    OFPT.GET_CONFIG_REPLY,
    OFPT.ROLE_REPLY,
    OFPT.BARRIER_REPLY,
    OFPT.ECHO_REPLY,
    OFPT.QUEUE_GET_CONFIG_REPLY,
    OFPT.GET_ASYNC_REPLY,
}


def route(message: Message, pending_xids: set[int]) -> Route:
    """Classify a switch->controller message. An ERROR is a reply when its
    xid answers a request the primary controller sent; otherwise it is
    asynchronous and mirrored."""
    if message.type in ASYNC:
        return Route.MIRROR
    if message.type == OFPT.ERROR:
        return Route.CACHE if message.xid in pending_xids else Route.MIRROR
    if message.type in CACHED_REPLIES:
        return Route.CACHE
    return Route.FILTER


def multipart_type(message: Message) -> int | None:
    """The multipart type of a MULTIPART_REQUEST or _REPLY (OpenFlow 1.3+)."""
    if message.type in (OFPT.MULTIPART_REQUEST, OFPT.MULTIPART_REPLY) and len(message.body) >= 2:
        return struct.unpack_from("!H", message.body)[0]
    return None
