"""OpenFlow framing and message classification, shared by the sidecar and
the health prober. Standard library only."""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

HEADER = struct.Struct("!BBHI")  # version, type, length, xid
HEADER_LEN = HEADER.size
_VERSION_TYPE_LENGTH = struct.Struct("!BBH")
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


class Scanner:
    """Walks the message headers of a TCP byte stream, whatever the segment
    boundaries, without copying the messages it only needs to count.

    Consecutive whole messages whose type is in `plain` are reported as one
    run, `on_run(buffer, start, end, count)`; every other message is cut out
    and passed to `on_message(Message)`. Bytes of an incomplete message stay
    buffered until their tail arrives. A header that cannot be OpenFlow
    raises FramingError: the session must be closed.
    """

    __slots__ = ("_on_message", "_on_run", "_plain", "_tail")

    def __init__(self, plain: frozenset[int], on_run, on_message) -> None:
        self._plain = plain
        self._on_run = on_run
        self._on_message = on_message
        self._tail = b""

    def feed(self, data: bytes) -> None:
        buf = self._tail + data if self._tail else bytes(data)
        n, off, run_start, run_count = len(buf), 0, 0, 0
        plain, unpack = self._plain, _VERSION_TYPE_LENGTH.unpack_from
        while n - off >= HEADER_LEN:
            version, kind, length = unpack(buf, off)
            if length < HEADER_LEN or version == 0 or version > 0x06:
                # What came before is whole and reported; from here on the
                # bytes are pending, for the caller to count or rescan.
                if run_count:
                    self._on_run(buf, run_start, off, run_count)
                self._tail = buf[off:]
                if length < HEADER_LEN:
                    raise FramingError(f"message length {length} is shorter than the header")
                raise FramingError(f"OpenFlow version {version:#x} is unknown")
            end = off + length
            if end > n:
                break
            if kind in plain:
                if not run_count:
                    run_start = off
                run_count += 1
            else:
                if run_count:
                    self._on_run(buf, run_start, off, run_count)
                    run_count = 0
                self._on_message(Message(version, kind, int.from_bytes(buf[off + 4 : off + 8], "big"), buf[off:end]))
            off = end
        if run_count:
            self._on_run(buf, run_start, off, run_count)
        self._tail = buf[off:]

    @property
    def pending(self) -> int:
        """Bytes held back, waiting for the rest of a message."""
        return len(self._tail)


def type_name(kind: int) -> str:
    """OFPT's name for a message type, or its number when OpenFlow 1.3 has none."""
    try:
        return OFPT(kind).name
    except ValueError:
        return str(kind)


class Framer:
    """Cuts a TCP byte stream into whole OpenFlow messages, whatever the
    segment boundaries (a Scanner that reports every message)."""

    def __init__(self) -> None:
        self._messages: list[Message] = []
        self._scanner = Scanner(frozenset(), None, self._messages.append)

    def feed(self, data: bytes) -> list[Message]:
        self._messages.clear()
        self._scanner.feed(data)
        return list(self._messages)

    @property
    def pending(self) -> int:
        return self._scanner.pending


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
