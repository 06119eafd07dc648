"""One switch session: relay it byte for byte to the primary path, and copy
its asynchronous messages to the master over a shadow session of its own.

The primary path never waits for the master: copies go through a bounded
queue, and a slow or dead master only costs dropped copies.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import struct
from dataclasses import dataclass

from .accounting import MirrorQueue
from .openflow import OFPT, Framer, FramingError, Message, Route, pack, route
from .shadow import SwitchView, answer

log = logging.getLogger("sdn_ha_mirror")

PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
REQUESTS = {
    OFPT.FEATURES_REQUEST,
    OFPT.GET_CONFIG_REQUEST,
    OFPT.MULTIPART_REQUEST,
    OFPT.BARRIER_REQUEST,
    OFPT.ROLE_REQUEST,
    OFPT.ECHO_REQUEST,
    OFPT.QUEUE_GET_CONFIG_REQUEST,
    OFPT.GET_ASYNC_REQUEST,
}


def proxy_v2_header(source: tuple[str, int], destination: tuple[str, int]) -> bytes:
    """A PROXY protocol v2 header for a TCP/IPv4 connection, so HAProxy's
    `balance source` still sees the switch's own address."""
    src, dst = ipaddress.IPv4Address(source[0]), ipaddress.IPv4Address(destination[0])
    addresses = src.packed + dst.packed + struct.pack("!HH", source[1], destination[1])
    return PROXY_V2_SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", len(addresses)) + addresses


@dataclass
class Settings:
    primary: tuple[str, int] = ("127.0.0.1", 16653)
    master: tuple[str, int] | None = None
    queue_limit: int = 1 << 20
    master_retry_max: float = 5.0


class SwitchSession:
    """Everything about one switch connection."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.queue = MirrorQueue(settings.queue_limit)
        self.view = SwitchView()
        self.pending_xids: set[int] = set()
        self.master_writer: asyncio.StreamWriter | None = None
        self.master_ready = asyncio.Event()
        self.view_ready = asyncio.Event()
        self.closed = asyncio.Event()

    # -- the primary path ------------------------------------------------
    async def serve(self, switch_reader: asyncio.StreamReader, switch_writer: asyncio.StreamWriter) -> None:
        peer = switch_writer.get_extra_info("peername")
        local = switch_writer.get_extra_info("sockname")
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.settings.primary)
        except OSError as exc:
            log.warning("switch %s: primary path %s unreachable: %s", peer, self.settings.primary, exc)
            switch_writer.close()
            return
        up_writer.write(proxy_v2_header(peer[:2], local[:2]))
        tasks = [
            asyncio.create_task(self._switch_to_primary(switch_reader, up_writer)),
            asyncio.create_task(self._primary_to_switch(up_reader, switch_writer)),
        ]
        if self.settings.master:
            tasks.append(asyncio.create_task(self._master_loop()))
        try:
            await asyncio.wait(tasks[:2], return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.closed.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for writer in (up_writer, switch_writer, self.master_writer):
                if writer is not None:
                    writer.close()

    async def _switch_to_primary(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = Framer()
        while data := await reader.read(65536):
            writer.write(data)  # byte for byte, before any parsing
            try:
                for message in framer.feed(data):
                    self._from_switch(message)
            except FramingError as exc:
                log.warning("switch sent bytes that are not OpenFlow: %s; closing the session", exc)
                return
            await writer.drain()

    async def _primary_to_switch(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = Framer()
        while data := await reader.read(65536):
            writer.write(data)
            try:
                for message in framer.feed(data):
                    if message.type in REQUESTS:
                        self.pending_xids.add(message.xid)
            except FramingError as exc:
                log.warning("primary path sent bytes that are not OpenFlow: %s; closing the session", exc)
                return
            await writer.drain()

    def _from_switch(self, message: Message) -> None:
        self.view.learn(message)
        decision = route(message, self.pending_xids)
        if decision is Route.CACHE:
            self.pending_xids.discard(message.xid)
        # No replay: while the master is away, its copies are dropped.
        if self.queue.account(message, decision, deliverable=self.master_ready.is_set()):
            self._flush()
        if self.view.ready:
            self.view_ready.set()

    # -- the shadow session ---------------------------------------------
    def _flush(self) -> None:
        writer = self.master_writer
        if writer is None or writer.is_closing():
            return
        transport = writer.transport
        while len(self.queue) and transport.get_write_buffer_size() < self.settings.queue_limit:
            writer.write(self.queue.take())

    async def _master_loop(self) -> None:
        await self.view_ready.wait()
        delay = 0.1
        while not self.closed.is_set():
            try:
                reader, writer = await asyncio.open_connection(*self.settings.master)
            except OSError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.master_retry_max)
                continue
            delay = 0.1
            self.master_writer = writer
            writer.write(pack(self.view.version, OFPT.HELLO, 0))
            self.master_ready.set()
            self._flush()
            try:
                await self._answer_master(reader, writer)
            finally:
                self.master_ready.clear()
                self.master_writer = None
                writer.close()

    async def _answer_master(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = Framer()
        while data := await reader.read(65536):
            try:
                messages = list(framer.feed(data))
            except FramingError as exc:
                log.warning("master sent bytes that are not OpenFlow: %s; reconnecting", exc)
                return
            for message in messages:
                result = answer(self.view, message)
                if result.swallowed:
                    self.queue.counters.swallowed_messages += 1
                    log.info("audit: master would have sent %s (xid %d)", OFPT(message.type).name, message.xid)
                for reply in result.replies:
                    writer.write(reply)
            self._flush()
            await writer.drain()
