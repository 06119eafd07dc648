"""The relay with scripted OpenFlow peers on loopback: a switch, the primary
path (standing in for HAProxy and a backup controller) and the master."""

import asyncio
import struct

from sdn_ha_mirror.openflow import OFPT, Framer, pack
from sdn_ha_mirror.relay import PROXY_V2_SIGNATURE, Settings, SwitchSession, proxy_v2_header

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


async def run_lab(with_master: bool, packet_ins: int = 50):
    primary, master, sessions = Primary(), Master(), []
    primary_server = await asyncio.start_server(primary.handle, "127.0.0.1", 0)
    master_server = await asyncio.start_server(master.handle, "127.0.0.1", 0)
    master_addr = master_server.sockets[0].getsockname()[:2]
    if not with_master:
        master_server.close()
        await master_server.wait_closed()
    settings = Settings(primary=primary_server.sockets[0].getsockname()[:2], master=master_addr)

    async def handle(reader, writer):
        session = SwitchSession(settings)
        sessions.append(session)
        await session.serve(reader, writer)

    sidecar = await asyncio.start_server(handle, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(*sidecar.sockets[0].getsockname()[:2])
    sent = bytearray()

    def send(data):
        sent.extend(data)
        writer.write(data)

    send(pack(4, OFPT.HELLO, 1))
    from_controller = await read_messages(reader, 3)
    send(pack(4, OFPT.FEATURES_REPLY, 100, bytes.fromhex("0000000000000001") + bytes(16)))
    send(pack(4, OFPT.MULTIPART_REPLY, 101, PORT_DESC + bytes(64)))
    await writer.drain()
    session = None
    for _ in range(100):
        session = sessions[0] if sessions else None
        if session and (session.master_ready.is_set() or not with_master) and session.view.ready:
            break
        await asyncio.sleep(0.02)
    for n in range(packet_ins):
        send(pack(4, OFPT.PACKET_IN, 0, n.to_bytes(4, "big") + bytes(100)))
    await writer.drain()
    await asyncio.sleep(0.3)
    counters = session.queue.counters
    writer.close()
    await asyncio.sleep(0.1)
    for server in (sidecar, primary_server, master_server):
        server.close()
    return primary, master, bytes(sent), from_controller, counters


def test_the_proxy_header_carries_the_switch_address():
    header = proxy_v2_header(("198.18.1.10", 40000), ("198.18.2.100", 6653))
    assert header.startswith(PROXY_V2_SIGNATURE) and header[12:14] == b"\x21\x11"
    assert header[16:20] == bytes([198, 18, 1, 10]) and struct.unpack("!HH", header[24:28]) == (40000, 6653)


def test_the_switch_is_relayed_byte_for_byte_and_the_master_gets_a_shadow_session():
    primary, master, sent, from_controller, counters = asyncio.run(run_lab(with_master=True))
    assert primary.header.startswith(PROXY_V2_SIGNATURE) and primary.header[16:20] == bytes([127, 0, 0, 1])
    assert bytes(primary.received) == sent
    # The switch only ever saw the backup's messages.
    assert [m.type for m in from_controller] == [OFPT.HELLO, OFPT.FEATURES_REQUEST, OFPT.MULTIPART_REQUEST]
    types = [m.type for m in master.messages]
    assert types[0] == OFPT.HELLO
    features = next(m for m in master.messages if m.type == OFPT.FEATURES_REPLY)
    assert features.xid == 7 and features.body[:8] == bytes.fromhex("0000000000000001")
    echo = next(m for m in master.messages if m.type == OFPT.ECHO_REPLY)
    assert (echo.xid, echo.body) == (9, b"are you there")
    packet_ins = [m for m in master.messages if m.type == OFPT.PACKET_IN]
    assert len(packet_ins) == counters.mirrored_messages == 50
    assert [int.from_bytes(m.body[:4], "big") for m in packet_ins] == list(range(50))
    assert counters.swallowed_messages == 1 and counters.dropped_messages == 0
    assert counters.consistent()


def test_a_dead_master_costs_copies_never_the_primary_path():
    primary, _, sent, _, counters = asyncio.run(run_lab(with_master=False))
    assert bytes(primary.received) == sent
    assert counters.mirrored_messages == 0 and counters.dropped_messages == 50
    assert counters.consistent()


def test_the_metrics_page_counts_every_session():
    from sdn_ha_mirror.__main__ import Registry

    registry = Registry()
    session = SwitchSession(Settings())
    session.queue.counters.relayed_messages = 3
    session.queue.counters.filtered_messages = 3
    registry.live.add(session)
    registry.ended.relayed_messages = 2
    registry.ended.dropped_messages = 2
    text = registry.render()
    assert "sdn_ha_mirror_relayed_messages_total 5" in text
    assert "sdn_ha_mirror_dropped_messages_total 2" in text
    assert "sdn_ha_mirror_sessions 1" in text
    # The gauge and the counter must not share a name once "_total" is stripped.
    from ansible_collections.sdn_ha.control_plane.plugins.plugin_utils.status import mirror_counters

    assert mirror_counters(text)["sessions"] == 1
