"""Scripted OpenFlow peers of the relay on loopback, shared by the sidecar's
tests: a switch, the primary path (standing in for HAProxy and a backup
controller) and the master."""

import asyncio
import os
import socket
import struct
import subprocess
import sys
import time

import sdn_ha_mirror
from sdn_ha_mirror.openflow import OFPT, Framer, pack
from sdn_ha_mirror.relay import Settings, start_server

PORT_DESC = struct.pack("!HH4x", 13, 0)


async def read_messages(reader, count, timeout=5.0):
    framer, got = Framer(), []
    while len(got) < count:
        data = await asyncio.wait_for(reader.read(65536), timeout)
        if not data:
            break
        got += list(framer.feed(data))
    return got


class Primary:
    """Reads the PROXY header, then plays the backup controller's handshake."""

    def __init__(self):
        self.header = b""
        self.received = bytearray()

    async def handle(self, reader, writer):
        self.header = await reader.readexactly(28)
        writer.write(pack(4, OFPT.HELLO, 1))
        writer.write(pack(4, OFPT.FEATURES_REQUEST, 100))
        writer.write(pack(4, OFPT.MULTIPART_REQUEST, 101, PORT_DESC))
        await writer.drain()
        while data := await reader.read(65536):
            self.received += data


class Master:
    """A master controller: handshake, a FLOW_MOD and an echo."""

    def __init__(self):
        self.messages = []

    async def handle(self, reader, writer):
        writer.write(pack(4, OFPT.HELLO, 1))
        writer.write(pack(4, OFPT.FEATURES_REQUEST, 7))
        writer.write(pack(4, OFPT.FLOW_MOD, 8, bytes(48)))
        writer.write(pack(4, OFPT.ECHO_REQUEST, 9, b"are you there"))
        await writer.drain()
        framer = Framer()
        while data := await reader.read(65536):
            self.messages += list(framer.feed(data))


class Switch:
    """A scripted switch that has done its handshake with the backup."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, address):
        switch = cls(*await asyncio.open_connection(*address))
        switch.writer.write(pack(4, OFPT.HELLO, 1))
        await read_messages(switch.reader, 3)
        switch.writer.write(pack(4, OFPT.FEATURES_REPLY, 100, bytes.fromhex("0000000000000001") + bytes(16)))
        switch.writer.write(pack(4, OFPT.MULTIPART_REPLY, 101, PORT_DESC + bytes(64)))
        await switch.writer.drain()
        return switch

    async def packet_ins(self, numbers):
        for n in numbers:
            self.writer.write(pack(4, OFPT.PACKET_IN, 0, n.to_bytes(4, "big") + bytes(100)))
        await self.writer.drain()


async def until(predicate, timeout=5.0):
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


class Masters:
    """Each connection of the master gets its own list of messages; the first
    one is cut after its handshake, to make the sidecar reconnect."""

    def __init__(self, script=()):
        self.connections = []
        self.script = script

    async def handle(self, reader, writer):
        got = []
        self.connections.append(got)
        writer.write(pack(4, OFPT.HELLO, 1))
        for message in self.script:
            writer.write(message)
        await writer.drain()
        framer = Framer()
        while data := await reader.read(65536):
            got += framer.feed(data)
            if len(self.connections) == 1 and any(m.type == OFPT.HELLO for m in got):
                writer.close()
                return


async def sidecar_with(masters, **settings):
    primary = Primary()
    primary_server = await asyncio.start_server(primary.handle, "127.0.0.1", 0)
    master_server = await asyncio.start_server(masters.handle, "127.0.0.1", 0)
    sessions = []
    config = Settings(
        primary=primary_server.sockets[0].getsockname()[:2],
        master=master_server.sockets[0].getsockname()[:2],
        **settings,
    )
    sidecar = await start_server(config, on_open=sessions.append, host="127.0.0.1", port=0)
    switch = await Switch.connect(sidecar.sockets[0].getsockname()[:2])
    return switch, sessions, (sidecar, primary_server, master_server)


# The sidecar's tree, for a sidecar run as its own process.
FILES = os.path.dirname(os.path.dirname(sdn_ha_mirror.__file__))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sidecar_process(primary_port: int, *options: str) -> tuple[subprocess.Popen, int, int]:
    """The relay as its own process, as on an LB, in front of `primary_port`:
    the process, its switch port and its metrics port, once it listens."""
    listen, metrics = free_port(), free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "sdn_ha_mirror", "--listen", f"127.0.0.1:{listen}"),
            *("--primary", f"127.0.0.1:{primary_port}", "--metrics", f"127.0.0.1:{metrics}", *options),
        ],
        env=dict(os.environ, PYTHONPATH=FILES),
        stderr=subprocess.PIPE,
        text=True,
    )
    # The metrics port opens last (and a connection to the switch port would be a session).
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", metrics)).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "the sidecar did not start"
            time.sleep(0.05)
    return process, listen, metrics
