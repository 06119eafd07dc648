"""The switch emulator against a scripted controller on loopback."""

import argparse
import asyncio
import struct

from sdn_ha_mirror.emulator import Emulator, Switch
from sdn_ha_mirror.openflow import OFPT, Framer, pack

ARGS = argparse.Namespace(inactivity_probe=5.0, max_backoff=8.0, control=None)


async def controller(script):
    """A controller that runs `script(reader, writer, framer)` per session."""
    sessions = []

    async def handle(reader, writer):
        sessions.append(writer.get_extra_info("peername"))
        await script(reader, writer, Framer())

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], sessions


async def read_messages(reader, framer, count):
    messages = []
    while len(messages) < count:
        messages += framer.feed(await asyncio.wait_for(reader.read(65536), 2))
    return messages


def test_a_switch_answers_the_handshake_faucet_runs_and_sends_packet_ins_on_demand():
    seen = {}

    async def script(reader, writer, framer):
        (hello,) = await read_messages(reader, framer, 1)
        seen["hello"] = hello.type
        writer.write(pack(4, OFPT.HELLO, 1) + pack(4, OFPT.FEATURES_REQUEST, 7))
        writer.write(pack(4, OFPT.MULTIPART_REQUEST, 8, struct.pack("!HH4x", 13, 0)))
        writer.write(pack(4, OFPT.ECHO_REQUEST, 9, b"ping") + pack(4, OFPT.FLOW_MOD, 10, bytes(48)))
        features, ports, echo = await read_messages(reader, framer, 3)
        seen["dpid"] = struct.unpack_from("!Q", features.body)[0]
        seen["features_xid"] = features.xid
        seen["ports"] = (len(ports.body) - 8) // 64
        seen["echo"] = (echo.type, echo.xid, echo.body)
        seen["packet_ins"] = [m.type for m in await read_messages(reader, framer, 3)]
        writer.close()

    async def scenario():
        server, port, sessions = await controller(script)
        switch = Switch("127.0.0.2", 0x1000, ports=2)
        emulator = Emulator(("127.0.0.1", port), [switch], ARGS)
        task = asyncio.create_task(emulator.run())
        for _ in range(100):
            if switch.received[OFPT.ECHO_REQUEST]:
                break
            await asyncio.sleep(0.02)
        status = emulator.control({"cmd": "status"})["switches"][0]
        sent = emulator.control({"cmd": "packet_in", "count": 3})
        await asyncio.sleep(0.3)
        task.cancel()
        server.close()
        return sessions, status, sent, switch

    sessions, status, sent, switch = asyncio.run(scenario())
    assert sessions[0][0] == "127.0.0.2"  # the session comes from the switch's own address
    assert seen == {
        "hello": OFPT.HELLO,
        "dpid": 0x1000,
        "features_xid": 7,
        "ports": 2,
        "echo": (OFPT.ECHO_REPLY, 9, b"ping"),
        "packet_ins": [OFPT.PACKET_IN] * 3,
    }
    assert status["connected"] is True
    assert status["datapath_id"] == "0x1000"
    assert sent == {"sent": {"127.0.0.2": 3}}
    assert switch.writes == 1


def test_a_dropped_session_comes_back_after_a_second_as_a_new_session():
    async def script(reader, writer, framer):
        await read_messages(reader, framer, 1)
        writer.close()

    async def scenario():
        server, port, sessions = await controller(script)
        switch = Switch("127.0.0.3", 0x2000)
        task = asyncio.create_task(Emulator(("127.0.0.1", port), [switch], ARGS).run())
        await asyncio.sleep(1.6)
        task.cancel()
        server.close()
        return sessions, switch

    sessions, switch = asyncio.run(scenario())
    assert len(sessions) == 2  # the first, and one more 1 s after it dropped
    assert switch.sessions == 2
    assert switch.last_error == "closed by the controller"


def test_a_session_closed_on_request_comes_back_a_second_later():
    async def script(reader, writer, framer):
        await read_messages(reader, framer, 1)
        await reader.read()

    async def scenario():
        server, port, sessions = await controller(script)
        switch = Switch("127.0.0.4", 0x3000)
        emulator = Emulator(("127.0.0.1", port), [switch], ARGS)
        task = asyncio.create_task(emulator.run())
        await asyncio.sleep(0.3)
        closed = emulator.control({"cmd": "disconnect"})
        await asyncio.sleep(1.5)
        task.cancel()
        server.close()
        return closed, sessions, switch

    closed, sessions, switch = asyncio.run(scenario())
    assert closed == {"closed": {"127.0.0.4": True}}
    assert len(sessions) == 2 and switch.sessions == 2


def test_packet_ins_from_one_mac_with_padded_frames():
    switch = Switch("127.0.0.5", 0x4000)

    class Writer:
        def __init__(self):
            self.data = []

        def is_closing(self):
            return False

        def write(self, data):
            self.data.append(data)

    switch.writer = Writer()
    assert switch.packet_ins(3, same_mac=True, padding=100) == 3
    frames = [m.body for data in switch.writer.data for m in Framer().feed(data)]
    macs = {body[-(60 + 100) + 6 : -(60 + 100) + 12] for body in frames}
    assert len(macs) == 1 and all(len(m) == 16 + 16 + 2 + 160 for m in frames)
    switch.packet_ins(2)
    assert len({d[-(60) + 6 : -(60) + 12] for d in switch.writer.data[3:]}) == 2
