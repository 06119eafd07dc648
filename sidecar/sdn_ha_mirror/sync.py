"""The switches' views, shared ahead of time with the peer LB, and kept on
disk for a mirror that restarts.

The master's shadow session for a switch can only open once the mirror
holds the switch's FEATURES_REPLY and PORT_DESC. The LB that takes the VIP
over picks every stream up mid-flight and never sees those replies again,
so the active LB sends each switch's view to its peer over the sync
segment as soon as it changes, and the peer keeps them until a session
ends. One JSON object a line:

    {"switch": "198.18.1.10:40311", "version": 4, "features": "<base64>",
     "config": "<base64>", "multipart": {"13": "<base64>", ...}}
    {"switch": "198.18.1.10:40311", "end": true}

A view decides what the master is told about a switch, so every record is
authenticated: each side of a connection first sends a fresh nonce,
`nonce <32 hex digits>`, and then signs each line it sends with HMAC-SHA256
under the key the two LBs share: `<64 hex digits> <record>`. The MAC covers
the sender's and the receiver's sync addresses, the side of the connection
the line comes from, both nonces, the line's number and the record. A line
signed with another key, replayed from another connection, moved within
one, or reflected back to the LB that wrote it fails, and ends the
connection. The connecting side's first line is a signed `{"hello": true}`;
the accepting side sends nothing signed before it has checked that line,
and keeps one connection from its peer at a time.

The hello carries the sender's boot id, random per run. A peer that comes
back with a new one has restarted: whatever went out on the connection to
its previous run may sit unacknowledged for seconds (nothing answers for a
dead host until it is back), so that connection is dropped and the next one
carries every live view again. A connection that has had data unacknowledged
for SEND_TIMEOUT_MS fails on its own (TCP_USER_TIMEOUT).

The LB that accepts the connection first sends back every view it holds
from the other: a mirror that restarts on the active LB thus gets back the
views it had shared, and keeps feeding the master without waiting for the
switches to reconnect. Only the peer's address is accepted; anything
malformed ends the connection. The link carries no secret (the key never
crosses it), and never a switch's own bytes beyond these replies.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import socket
from collections import OrderedDict

from .shadow import SwitchView

log = logging.getLogger("sdn_ha_mirror")

KNOWN_LIMIT = 65536  # views kept for the peer's sessions, oldest dropped first
LINE_LIMIT = 1 << 20  # a view is a few KB; TABLE_FEATURES can be tens of KB
PUSH_SECONDS = 0.2
HELLO_SECONDS = 5.0  # for the peer's nonce and its first signed line
DRAIN_SECONDS = 5.0  # for a peer that does not read
SEND_TIMEOUT_MS = 3000  # unacknowledged data fails the connection after this long
MIN_KEY = 16  # bytes


class Channel:
    """One connection's signing. Each line's MAC covers who sends it to whom
    (the two LBs' sync addresses), which side of the connection it comes
    from, both nonces and its number, so that a line is good only on the
    connection, in the direction and at the place it was written for."""

    def __init__(self, key: bytes, me: str, peer: str, accepting: bool) -> None:
        self.key, self.me, self.peer, self.accepting = key, me.encode(), peer.encode(), accepting
        self.mine = os.urandom(16)
        self.theirs = b""
        self.sent = self.received = 0

    def hello(self) -> bytes:
        return b"nonce " + self.mine.hex().encode() + b"\n"

    async def greet(self, reader: asyncio.StreamReader) -> None:
        """Take the peer's nonce; ValueError if it sends something else."""
        line = await asyncio.wait_for(reader.readline(), HELLO_SECONDS)
        if not line:
            raise ConnectionResetError("the peer closed the connection")
        word, _, nonce = line.rstrip(b"\n").partition(b" ")
        if word != b"nonce" or len(nonce) != 32:
            raise ValueError("the connection did not start with a nonce")
        self.theirs = bytes.fromhex(nonce.decode("ascii"))
        if self.theirs == self.mine:
            raise ValueError("the peer sent this side's own nonce back")

    def _mac(self, outgoing: bool, number: int, body: bytes) -> bytes:
        sender, receiver = (self.me, self.peer) if outgoing else (self.peer, self.me)
        nonces = self.mine + self.theirs if outgoing else self.theirs + self.mine
        from_accepting = self.accepting == outgoing
        context = b"sdn_ha view sync 1\n%s\n%s\n%d\n" % (sender, receiver, from_accepting)
        message = context + nonces + number.to_bytes(8, "big") + body
        return hmac.new(self.key, message, hashlib.sha256).hexdigest().encode()

    def seal(self, body: bytes) -> bytes:
        line = self._mac(True, self.sent, body) + b" " + body + b"\n"
        self.sent += 1
        return line

    def open(self, line: bytes) -> dict:
        """The record of a signed line; ValueError if the signature fails."""
        mac, _, body = line.rstrip(b"\n").partition(b" ")
        if not hmac.compare_digest(mac, self._mac(False, self.received, body)):
            raise ValueError(f"line {self.received} failed authentication")
        self.received += 1
        try:
            record = json.loads(body)
        except RecursionError as exc:
            raise ValueError("a record nests too deep") from exc
        if not isinstance(record, dict):
            raise ValueError("a record is a JSON object")
        return record


def encode(label: str, view: SwitchView) -> bytes:
    def b64(data: bytes | None) -> str | None:
        return base64.b64encode(data).decode() if data else None

    record = {
        "switch": label,
        "version": view.version,
        "features": b64(view.features),
        "config": b64(view.config),
        "multipart": {str(k): b64(v) for k, v in view.multipart.items() if k in SwitchView.SHARED_MULTIPART},
    }
    return json.dumps(record, separators=(",", ":")).encode()


def decode(record: dict) -> SwitchView:
    """A view from a record; ValueError when the record is not one."""

    def raw(text) -> bytes | None:
        if text is None:
            return None
        if not isinstance(text, str) or len(text) > LINE_LIMIT:
            raise ValueError("a reply is not base64 text")
        return base64.b64decode(text, validate=True) or None

    version, multipart = record.get("version"), record.get("multipart")
    if not isinstance(version, int) or not 1 <= version <= 6 or not isinstance(multipart, dict):
        raise ValueError(f"not a view: version {version!r}")
    view = SwitchView(version=version, features=raw(record.get("features")), config=raw(record.get("config")))
    view.multipart = {
        int(k): data for k, v in multipart.items() if int(k) in SwitchView.SHARED_MULTIPART and (data := raw(v))
    }
    return view


def save_views(path: str, views: list[tuple[str, SwitchView]]) -> None:
    """The live sessions' views, for a restarted mirror (atomically)."""
    partial = f"{path}.partial"
    with open(partial, "wb") as handle:
        handle.writelines(encode(label, view) + b"\n" for label, view in views if view.ready)
    os.replace(partial, path)


def load_views(path: str) -> OrderedDict[str, SwitchView]:
    known: OrderedDict[str, SwitchView] = OrderedDict()
    try:
        with open(path, "rb") as handle:
            for line in handle:
                record = json.loads(line)
                known[str(record["switch"])] = decode(record)
    except FileNotFoundError:
        pass
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("%s: bad record (%s); the views after it are ignored", path, exc)
    return known


class PeerSync:
    def __init__(
        self, listen: tuple[str, int], peer: tuple[str, int], key: bytes, known: OrderedDict | None = None
    ) -> None:
        if len(key) < MIN_KEY:
            raise ValueError(f"the view sync's key has {len(key)} bytes; it needs at least {MIN_KEY}")
        self.listen, self.peer, self.key = listen, peer, key
        self.known: OrderedDict[str, SwitchView] = known if known is not None else OrderedDict()
        self.sent: dict[str, int] = {}  # label -> view generation the peer has
        self.ended: list[str] = []
        self.received = self.pushed = 0
        self.refused = 0  # connections ended: not the peer, no nonce, a bad signature or record
        self.boot = os.urandom(8).hex()  # this run's id, in the hello
        self.peer_boot: str | None = None  # the peer's run, from its last hello
        self._writer: asyncio.StreamWriter | None = None
        self._channel: Channel | None = None
        self._inbound: asyncio.StreamWriter | None = None  # the peer's live connection to this side
        self._reader_task: asyncio.Task | None = None

    def view_for(self, label: str) -> SwitchView | None:
        """The peer's view of this session, taken over (the peer gets ours from now on)."""
        return self.known.pop(label, None)

    def session_ended(self, label: str) -> None:
        """Tell the peer, if it was told of the session at all."""
        if self.sent.pop(label, None) is not None:
            self.ended.append(label)

    # -- receiving ----------------------------------------------------------
    async def serve(self) -> asyncio.Server:
        return await asyncio.start_server(self._receive, *self.listen, limit=LINE_LIMIT)

    async def _receive(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        source = writer.get_extra_info("peername")[0]
        if source != self.peer[0]:
            log.warning("view sync: refused a connection from %s (the peer is %s)", source, self.peer[0])
            self.refused += 1
            writer.close()
            return
        channel = Channel(self.key, _text(self.listen), _text(self.peer), accepting=True)
        try:
            writer.write(channel.hello())
            await channel.greet(reader)
            hello = channel.open(await asyncio.wait_for(reader.readline(), HELLO_SECONDS))
            if hello.get("hello") is not True:
                raise ValueError("the first signed line is not the peer's hello")
            self._peer_run(str(hello.get("boot")))
            if self._inbound is not None:  # one connection from the peer at a time: the newest
                self._inbound.close()
            self._inbound = writer
            # What the peer shared before it restarted, back to it.
            writer.writelines([channel.seal(encode(label, view)) for label, view in self.known.items()])
            await asyncio.wait_for(writer.drain(), DRAIN_SECONDS)
            await self._read_records(reader, source, channel)
        except (ValueError, TimeoutError, asyncio.LimitOverrunError) as exc:
            log.warning("view sync: %s from %s; dropping the connection", exc, source)
            self.refused += 1
        except ConnectionError:
            pass
        finally:
            if self._inbound is writer:
                self._inbound = None
            writer.close()

    def _peer_run(self, boot: str) -> None:
        """A hello from a run of the peer not seen before: drop the connection
        to its previous run, so that the next carries every live view."""
        if boot != self.peer_boot and self._writer is not None:
            log.info("view sync: the peer restarted; sending every view again")
            self._writer.close()
            self._writer = None
        self.peer_boot = boot

    async def _read_records(self, reader: asyncio.StreamReader, source: str, channel: Channel) -> None:
        try:
            while line := await reader.readline():
                record = channel.open(line)
                label = str(record["switch"])
                if record.get("end"):
                    self.known.pop(label, None)
                    continue
                self.known[label] = decode(record)
                self.known.move_to_end(label)
                self.received += 1
                while len(self.known) > KNOWN_LIMIT:
                    self.known.popitem(last=False)
        except (ValueError, KeyError, TypeError, AttributeError, asyncio.LimitOverrunError) as exc:
            log.warning("view sync: bad record from %s: %s; dropping the connection", source, exc)
            self.refused += 1
        except ConnectionError:
            pass

    # -- sending ------------------------------------------------------------
    async def push(self, sessions) -> None:
        """Every PUSH_SECONDS, send the views that changed; `sessions()` gives
        (label, view) for every live session. A new connection gets all."""
        while True:
            await asyncio.sleep(PUSH_SECONDS)
            if self._writer is None or self._writer.is_closing():
                self._writer = None
                channel = Channel(self.key, _text(self.listen), _text(self.peer), accepting=False)
                try:
                    reader, writer = await asyncio.wait_for(asyncio.open_connection(*self.peer, limit=LINE_LIMIT), 1.0)
                except (TimeoutError, OSError):
                    continue
                try:
                    writer.get_extra_info("socket").setsockopt(
                        socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, SEND_TIMEOUT_MS
                    )
                    writer.write(channel.hello())
                    await channel.greet(reader)
                    writer.write(channel.seal(json.dumps({"hello": True, "boot": self.boot}).encode()))
                except ConnectionError:
                    writer.close()
                    continue
                except (ValueError, TimeoutError, OSError) as exc:
                    log.warning("view sync: %s from %s; dropping the connection", exc, self.peer[0])
                    self.refused += 1
                    writer.close()
                    continue
                self._writer, self._channel = writer, channel
                self.sent.clear()
                self.ended.clear()
                if self._reader_task is not None:
                    self._reader_task.cancel()
                self._reader_task = asyncio.get_running_loop().create_task(
                    self._read_records(reader, self.peer[0], channel)
                )
            writer, seal = self._writer, self._channel.seal  # _peer_run may drop it while this waits
            try:
                for label in self.ended:
                    writer.write(seal(json.dumps({"switch": label, "end": True}).encode()))
                self.ended.clear()
                for label, view in sessions():
                    if view.ready and self.sent.get(label) != view.generation:
                        writer.write(seal(encode(label, view)))
                        self.sent[label] = view.generation
                        self.pushed += 1
                await asyncio.wait_for(writer.drain(), 5.0)
            except (ConnectionError, OSError, TimeoutError):
                writer.close()
                if self._writer is writer:
                    self._writer = None


def _text(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"
