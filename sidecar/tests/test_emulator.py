"""The switch emulator against a scripted controller on loopback."""

import argparse
import asyncio
import contextlib
import math
import random
import struct
import time

import pytest
from sdn_ha_mirror.emulator import Emulator, Rconn, Switch
from sdn_ha_mirror.openflow import OFPT, Framer, pack

ARGS = argparse.Namespace(inactivity_probe=5, max_backoff=8, control=None)


def on_the_second() -> Rconn:
    """A switch whose clock has just passed a whole second: its first attempt
    has the whole second OVS gives it. (With a random phase, as in a fleet,
    an attempt may have only milliseconds before it times out, as in OVS.)"""
    return Rconn(phase=(0.01 - time.monotonic()) % 1.0)


async def controller(script):
    """A controller that runs `script(reader, writer, framer)` per session."""
    sessions = []

    async def handle(reader, writer):
        sessions.append(writer.get_extra_info("peername"))
        await script(reader, writer, Framer())

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], sessions


@contextlib.asynccontextmanager
async def configured(script, address, datapath_id):
    """One emulated switch against `script`, once the controller has
    configured it: (switch, emulator, sessions); stopped on the way out."""
    server, port, sessions = await controller(script)
    switch = Switch(address, datapath_id, rconn=on_the_second())
    emulator = Emulator(("127.0.0.1", port), [switch], ARGS)
    task = asyncio.create_task(emulator.run())
    try:
        await until(lambda: switch.configured_at)
        yield switch, emulator, sessions
    finally:
        task.cancel()
        server.close()


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
        switch = Switch("127.0.0.2", 0x1000, ports=2, rconn=on_the_second())
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


def test_a_dropped_session_comes_back_within_a_second_as_a_new_session():
    async def script(reader, writer, framer):
        await read_messages(reader, framer, 1)
        writer.write(pack(4, OFPT.HELLO, 1))
        await asyncio.sleep(0.05)
        writer.close()

    async def scenario():
        server, port, sessions = await controller(script)
        switch = Switch("127.0.0.3", 0x2000, rconn=on_the_second())
        task = asyncio.create_task(Emulator(("127.0.0.1", port), [switch], ARGS).run())
        await asyncio.sleep(1.6)
        task.cancel()
        server.close()
        return sessions, switch

    sessions, switch = asyncio.run(scenario())
    assert len(sessions) == 2  # the first, and one more 1 s after it dropped
    assert switch.sessions == 2
    assert switch.last_error == "closed by the controller"


def test_a_session_closed_on_request_comes_back_within_a_second():
    async def script(reader, writer, framer):
        await read_messages(reader, framer, 1)
        writer.write(pack(4, OFPT.HELLO, 1))
        await reader.read()

    async def scenario():
        server, port, sessions = await controller(script)
        switch = Switch("127.0.0.4", 0x3000, rconn=on_the_second())
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


def refused(fsm: Rconn, now: float) -> float:
    """An attempt at `now` that the controller refuses at once: the wait
    until the next one."""
    fsm.connecting(now)
    return fsm.disconnected(now + 0.01) - now


def test_refused_attempts_back_off_1_2_4_then_max_backoff_as_ovs_rconn():
    fsm, now, waits = Rconn(max_backoff=8, phase=0.0), 100.0, []
    for _ in range(6):
        waits.append(round(refused(fsm, now), 3))
        now += waits[-1]
    assert waits == [1, 2, 4, 8, 8, 8]
    assert Rconn(max_backoff=60, phase=0.0).max_backoff == 60
    fsm, now, waits = Rconn(max_backoff=60, phase=0.0), 0.0, []
    for _ in range(8):
        waits.append(round(refused(fsm, now), 3))
        now += waits[-1]
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60]  # 32 >= 60 // 2: straight to the maximum


def test_a_session_that_outlived_its_backoff_waits_one_second_and_a_short_one_doubles():
    fsm = Rconn(max_backoff=8, phase=0.0)
    now = 100.0
    for _ in range(4):
        now += refused(fsm, now)
    assert fsm.backoff == 8
    fsm.connecting(now)
    fsm.connected(now + 0.1)
    assert round(fsm.disconnected(now + 20.5) - (now + 20.5), 3) == 0.5  # to the clock's next whole second
    assert fsm.backoff == 1
    start = now + 21
    fsm.connecting(start)
    fsm.connected(start + 0.1)
    fsm.disconnected(start + 0.5)  # up for less than its backoff (1 s): doubles
    assert fsm.backoff == 2


def test_a_timed_out_attempt_doubles_even_after_its_backoff():
    fsm = Rconn(max_backoff=8, phase=0.0)
    refused(fsm, 10.0)
    assert fsm.backoff == 1
    assert fsm.connecting(11.0) == 12.0  # max(1, backoff) after the whole second it started in
    fsm.timed_out()
    fsm.disconnected(12.0)
    assert fsm.backoff == 2
    assert fsm.connecting(14.0) == 16.0


def test_the_clock_phase_spreads_a_fleets_one_second_wait_over_the_second():
    random.seed(7)
    waits = []
    for _ in range(500):
        fsm = Rconn()
        fsm.connecting(0.0)
        fsm.connected(0.2)
        waits.append(fsm.disconnected(30.0) - 30.0)
    assert all(0 < w <= 1 for w in waits)
    assert 0.4 < sorted(waits)[250] < 0.6 and min(waits) < 0.05 and max(waits) > 0.95
    phased = Rconn(phase=0.75)
    phased.connecting(0.0)
    phased.connected(0.1)
    assert math.isclose(phased.disconnected(30.0), 30.25)  # its clock reads 30.75: 31 comes 0.25 s later


def test_the_inactivity_probe_counts_whole_seconds_and_is_at_least_five():
    assert Rconn(probe_interval=2).probe_interval == 5 and Rconn(probe_interval=0).probe_at() == math.inf
    fsm = Rconn(probe_interval=5, phase=0.0)
    fsm.connecting(200.0)
    assert fsm.connected(200.2) == 205.0
    assert fsm.activity(203.9) == 208.0
    assert fsm.idle(208.0) == 213.0


@pytest.mark.parametrize("drop", [True, False])
def test_a_mark_times_the_first_answered_echo_on_a_working_session_and_counts_drops(drop):
    async def script(reader, writer, framer):
        await read_messages(reader, framer, 1)
        writer.write(pack(4, OFPT.HELLO, 1) + pack(4, OFPT.FLOW_MOD, 2, bytes(48)))
        while data := await reader.read(65536):
            for message in framer.feed(data):
                if message.type == OFPT.ECHO_REQUEST:
                    if drop and not seen:
                        seen.append(message.xid)
                        writer.close()
                        return
                    writer.write(pack(4, OFPT.ECHO_REPLY, message.xid, message.body))

    seen = []

    async def scenario():
        server, port, sessions = await controller(script)
        switch = Switch("127.0.0.6", 0x5000, rconn=on_the_second())
        emulator = Emulator(("127.0.0.1", port), [switch], ARGS)
        task = asyncio.create_task(emulator.run())
        for _ in range(100):
            if switch.configured_at:
                break
            await asyncio.sleep(0.02)
        marked = emulator.control({"cmd": "mark"})
        await asyncio.sleep(0.1)
        assert switch.served_at is None  # a mark alone sends nothing
        emulator.control({"cmd": "probe", "echo_interval": 0.05})
        for _ in range(150):
            if switch.served_at:
                break
            await asyncio.sleep(0.02)
        task.cancel()
        server.close()
        return marked, switch, sessions

    marked, switch, sessions = asyncio.run(scenario())
    assert switch.served_at is not None and switch.served_at >= marked["marked_at"]
    assert switch.served_at >= switch.configured_at  # on the session that works: the second one after a drop
    assert switch.drops == (1 if drop else 0)
    assert len(sessions) == (2 if drop else 1)
    assert switch.status()["served_at"] == switch.served_at


def test_an_attempt_that_gets_no_hello_times_out_and_backs_off():
    async def script(reader, writer, framer):
        await read_messages(reader, framer, 1)
        await reader.read()  # accepted, but never a HELLO back

    async def scenario():
        server, port, sessions = await controller(script)
        switch = Switch("127.0.0.7", 0x6000, rconn=on_the_second())
        task = asyncio.create_task(Emulator(("127.0.0.1", port), [switch], ARGS).run())
        await asyncio.sleep(1.3)
        first = (len(sessions), switch.rconn.backoff, switch.last_error)
        await asyncio.sleep(1.0)
        task.cancel()
        server.close()
        return first, sessions, switch

    first, sessions, switch = asyncio.run(scenario())
    assert first == (1, 1, "connection timed out")  # timed out at the next whole second
    assert len(sessions) == 2 and switch.sessions == 0  # tried again; never connected
    assert switch.rconn.backoff == 1 and switch.rconn.backoff_deadline > 0


def test_a_served_switch_that_loses_its_session_is_served_again_and_a_requested_close_is_no_drop():
    async def script(reader, writer, framer):
        await read_messages(reader, framer, 1)
        writer.write(pack(4, OFPT.HELLO, 1) + pack(4, OFPT.FLOW_MOD, 2, bytes(48)))
        while data := await reader.read(65536):
            for message in framer.feed(data):
                if message.type == OFPT.ECHO_REQUEST:
                    writer.write(pack(4, OFPT.ECHO_REPLY, message.xid, message.body))
                    if len(closing) == 1:
                        closing.append("closed")
                        writer.close()  # a served session lost
                        return

    closing = []

    async def scenario():
        async with configured(script, "127.0.0.8", 0x7000) as (switch, emulator, sessions):
            emulator.control({"cmd": "mark", "echo_interval": 0.05})
            await until(lambda: switch.served_at)
            first = switch.served_at
            closing.append("now")
            emulator.control({"cmd": "probe", "echo_interval": 0.05})  # served: nothing to echo until a drop
            switch.send(pack(4, OFPT.ECHO_REQUEST, 1))  # the controller closes on this one
            await until(lambda: switch.drops == 1 and switch.served_at is not None, 3.0)
            again = switch.served_at
            emulator.control({"cmd": "disconnect"})
            await until(lambda: switch.sessions == 3 and switch.up, 3.0)
        return first, again, switch, sessions

    first, again, switch, sessions = asyncio.run(scenario())
    assert again > first  # reset on the drop, then answered on the new session
    assert switch.drops == 1  # the requested close counted no drop
    assert len(sessions) == 3


async def until(predicate, timeout=2.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_a_watch_keeps_the_slowest_echo_round_trip_since_the_mark():
    stall = 0.4

    async def script(reader, writer, framer):
        await read_messages(reader, framer, 1)
        writer.write(pack(4, OFPT.HELLO, 1) + pack(4, OFPT.FLOW_MOD, 2, bytes(48)))
        while data := await reader.read(65536):
            for message in framer.feed(data):
                if message.type == OFPT.ECHO_REQUEST:
                    if stalling:
                        stalling.clear()
                        await asyncio.sleep(stall)  # a controller busy with a reload
                    writer.write(pack(4, OFPT.ECHO_REPLY, message.xid, message.body))

    stalling = []

    async def scenario():
        async with configured(script, "127.0.0.9", 0x8000) as (switch, emulator, _):
            emulator.control({"cmd": "mark"})
            emulator.control({"cmd": "watch", "echo_interval": 0.05})
            await until(lambda: switch.slowest_echo is not None)
            quick = switch.slowest_echo
            stalling.append(True)
            await asyncio.sleep(stall + 0.3)
            slow = switch.slowest_echo
            emulator.control({"cmd": "mark"})
            fresh = switch.slowest_echo
            emulator.control({"cmd": "watch", "echo_interval": 0})
            await asyncio.sleep(0.15)
        return quick, slow, fresh, switch

    quick, slow, fresh, switch = asyncio.run(scenario())
    assert quick < 0.2
    assert stall <= slow < stall + 0.2  # the echo that waited out the stall
    assert fresh is None  # a mark starts again
    assert switch.watch_task is None  # watch 0 stopped the echoes


def test_a_watched_echo_that_a_lost_session_never_answered_counts_until_the_loss():
    async def script(reader, writer, framer):
        await read_messages(reader, framer, 1)
        writer.write(pack(4, OFPT.HELLO, 1) + pack(4, OFPT.FLOW_MOD, 2, bytes(48)))
        if sessions:
            await reader.read()  # the second session: quiet, kept open
            return
        sessions.append(writer)
        await read_messages(reader, framer, 1)  # the first watched echo: never answered
        await asyncio.sleep(0.4)
        writer.close()  # the controller gives up on the switch

    sessions = []

    async def scenario():
        async with configured(script, "127.0.0.10", 0x9000) as (switch, emulator, _):
            emulator.control({"cmd": "mark"})
            emulator.control({"cmd": "watch", "echo_interval": 0.1})
            await until(lambda: switch.drops == 1, 3.0)
        return switch

    switch = asyncio.run(scenario())
    assert 0.3 <= switch.slowest_echo < 1.0  # from its send (within 0.1 s of the watch) to the loss
    assert not switch.watch_sent
