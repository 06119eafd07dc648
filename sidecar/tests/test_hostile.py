"""The master link and the switch's view against a hostile peer: every
store is bounded, a master that misbehaves costs a bounded amount of work,
and its would-be writes cannot flood the log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time

from peers import Masters, sidecar_with, until
from sdn_ha_mirror import master as master_module
from sdn_ha_mirror.accounting import MirrorQueue
from sdn_ha_mirror.holding import HOLD_LIMIT, Holding
from sdn_ha_mirror.master import AUDIT_LINES_PER_SECOND, MasterLink, Settings
from sdn_ha_mirror.openflow import OFPT, Framer, Message, pack
from sdn_ha_mirror.shadow import VIEW_LIMIT, SwitchView


def multipart_reply(kind: int, body: bytes, xid: int = 1) -> Message:
    data = pack(4, OFPT.MULTIPART_REPLY, xid, struct.pack("!HH4x", kind, 0) + body)
    return Framer().feed(data)[0]


def ready_view() -> SwitchView:
    view = SwitchView()
    for message in Framer().feed(
        pack(4, OFPT.HELLO, 1)
        + pack(4, OFPT.FEATURES_REPLY, 2, (1).to_bytes(8, "big") + bytes(16))
        + pack(4, OFPT.MULTIPART_REPLY, 3, struct.pack("!HH4x", 13, 0) + bytes(64))
    ):
        view.learn(message)
    assert view.ready
    return view


def test_a_switch_cannot_grow_its_view_with_kinds_of_its_own():
    view = ready_view()
    for kind in range(1 << 16):
        view.learn(multipart_reply(kind, bytes(16)))
    assert len(view.multipart) <= 21  # the kinds OpenFlow defines, and EXPERIMENTER
    assert view.refused >= (1 << 16) - 21


def test_a_view_keeps_at_most_view_limit_bytes():
    view = ready_view()
    for kind in range(20):
        view.learn(multipart_reply(kind, bytes(60000)))
    assert view.size <= VIEW_LIMIT and view.refused > 0
    assert 13 in view.multipart  # what it kept stays answerable


def test_the_holding_is_bounded_and_clearing_it_cancels_its_timers():
    expired = []

    async def run():
        holding = Holding(0.05, expired.append)
        request = Framer().feed(pack(4, OFPT.MULTIPART_REQUEST, 1, struct.pack("!HH4x", 1, 0) + bytes(40)))[0]
        held = [holding.hold(request) for _ in range(1000)]
        assert held.count(True) == HOLD_LIMIT and len(holding) == HOLD_LIMIT
        holding.clear()
        assert len(holding) == 0 and holding.bytes == 0
        await asyncio.sleep(0.1)

    asyncio.run(run())
    assert expired == []  # the cleared requests' timers never fired


async def link_against(handle, seconds: float, **settings) -> MasterLink:
    """A master link (its view ready) against a master played by `handle`,
    for `seconds`."""
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    view = ready_view()
    link = MasterLink(
        Settings(master=server.sockets[0].getsockname()[:2], **settings), view, MirrorQueue(1 << 20), "test"
    )
    link.view_changed()
    task = asyncio.get_running_loop().create_task(link.run())
    await asyncio.sleep(seconds)
    task.cancel()
    server.close()
    return link


def test_a_master_that_accepts_and_closes_at_once_is_retried_with_backoff():
    async def slam(reader, writer):
        writer.close()

    link = asyncio.run(link_against(slam, 2.0))
    # 0.1 + 0.2 + 0.4 + 0.8 s of waiting fit in 2 s: 4 or 5 connections (before: thousands).
    assert 2 <= link.connects <= 6, link.connects


def test_a_master_that_stops_in_the_middle_of_a_message_is_given_up(monkeypatch):
    monkeypatch.setattr(master_module, "PARTIAL_TIMEOUT", 0.3)

    async def stall(reader, writer):
        writer.write(pack(4, OFPT.HELLO, 1) + pack(4, OFPT.ECHO_REQUEST, 2, bytes(100))[:20])
        await writer.drain()
        await asyncio.sleep(5)

    link = asyncio.run(link_against(stall, 1.2))
    assert link.connects >= 2


def test_requests_past_the_holding_are_answered_with_errors_at_once():
    got = []

    async def flood(reader, writer):
        request = pack(4, OFPT.MULTIPART_REQUEST, 7, struct.pack("!HH4x", 1, 0) + bytes(40))  # FLOW stats: not cached
        writer.write(pack(4, OFPT.HELLO, 1) + request * 1000)
        await writer.drain()
        framer = Framer()
        while data := await reader.read(65536):
            got.extend(m.type for m in framer.feed(data))

    link = asyncio.run(link_against(flood, 0.5, hold_timeout=30))
    assert len(link.holding) <= HOLD_LIMIT
    assert got.count(OFPT.ERROR) >= 1000 - HOLD_LIMIT
    assert link.queue.counters.unanswered_messages >= 1000 - HOLD_LIMIT


def test_the_masters_writes_are_counted_each_but_logged_at_a_bounded_rate(caplog):
    async def writes(reader, writer):
        writer.write(pack(4, OFPT.HELLO, 1) + pack(4, OFPT.FLOW_MOD, 8, bytes(48)) * 5000)
        await writer.drain()
        await asyncio.sleep(5)

    with caplog.at_level(logging.INFO, logger="sdn_ha_mirror"):
        link = asyncio.run(link_against(writes, 1.5))
    assert link.queue.counters.swallowed_messages == 5000
    audit = [r.getMessage() for r in caplog.records if r.getMessage().startswith("audit: master would have sent")]
    assert len(audit) <= 2 * AUDIT_LINES_PER_SECOND
    # The log still accounts for every write: the lines, and the counts of the summaries.
    summed = [int(line.split()[5]) for line in audit if " more writes " in line]
    assert summed and len(audit) - len(summed) + sum(summed) == 5000


def test_sessions_past_max_sessions_are_closed_at_once_and_counted():
    from peers import Primary
    from sdn_ha_mirror.relay import SwitchSession, start_server

    async def run():
        primary = Primary()
        primary_server = await asyncio.start_server(primary.handle, "127.0.0.1", 0)
        settings = Settings(primary=primary_server.sockets[0].getsockname()[:2], max_sessions=2)
        relay = await start_server(settings, host="127.0.0.1", port=0)
        where = relay.sockets[0].getsockname()[:2]
        refused_before, ended = SwitchSession.refused, []
        clients = [await asyncio.open_connection(*where) for _ in range(3)]
        await asyncio.sleep(0.2)
        for reader, _writer in clients:
            try:
                ended.append(await asyncio.wait_for(reader.read(1 << 16), 0.3) == b"")
            except TimeoutError:
                ended.append(False)
        for _, writer in clients:
            writer.close()
        await asyncio.sleep(0.1)
        relay.close()
        primary_server.close()
        return ended, SwitchSession.refused - refused_before, SwitchSession.live

    ended, refused, live = asyncio.run(run())
    assert ended == [False, False, True] and refused == 1
    assert live == 0  # every session that opened was counted out again


def test_a_closed_sessions_objects_are_freed_at_once_not_by_the_cycle_collector():
    """Reference counting alone must free a session: with the cycle collector
    off, nothing of it survives its close."""
    import gc
    import weakref

    async def scenario():
        masters = Masters(script=[pack(4, OFPT.MULTIPART_REQUEST, 50, struct.pack("!HH4x", 4, 0))])
        switch, sessions, servers = await sidecar_with(masters)
        await until(lambda: len(masters.connections) == 2 and sessions[0].master_ready.is_set())
        await switch.packet_ins(range(20))
        await asyncio.sleep(0.1)
        session = sessions[0]
        parts = {
            "session": session,
            "tap": session.tap,
            "link": session.tap.link,
            "view": session.view,
            "switch pipe": session.switch,
            "primary pipe": session.primary,
            "holding": session.tap.link.holding,
        }
        refs = {name: weakref.ref(part) for name, part in parts.items()}
        del session, parts
        sessions.clear()
        switch.writer.close()
        await until(lambda: refs["session"]() is None or refs["session"]().closed.is_set())
        for _ in range(20):  # the transports' and tasks' last callbacks
            await asyncio.sleep(0.01)
        alive = [name for name, ref in refs.items() if ref() is not None]
        for server in servers:
            server.close()
        return alive

    gc.collect()
    gc.disable()
    try:
        alive = asyncio.run(scenario())
    finally:
        gc.enable()
    assert alive == []


def relay_against(primary_handle=None, **settings):
    """A relay in front of a primary path played by `primary_handle` (by
    default, the backup's handshake of peers.Primary)."""
    from peers import Primary
    from sdn_ha_mirror.relay import start_server

    async def start():
        primary = await asyncio.start_server(primary_handle or Primary().handle, "127.0.0.1", 0)
        config = Settings(primary=primary.sockets[0].getsockname()[:2], **settings)
        sessions = []
        relay = await start_server(config, on_open=sessions.append, host="127.0.0.1", port=0)
        return relay, primary, sessions

    return start()


async def closed_within(reader, seconds: float) -> bool:
    """True when the relay closes the connection within `seconds`."""
    try:
        while await asyncio.wait_for(reader.read(65536), seconds):
            pass
    except ConnectionError:  # closed with bytes unread: a reset
        pass
    except TimeoutError:
        return False
    return True


def test_a_switch_that_never_finishes_its_handshake_is_closed():
    from sdn_ha_mirror.relay import SwitchSession

    async def scenario():
        relay, primary, _ = await relay_against(handshake_timeout=0.5, idle_timeout=30)
        address = relay.sockets[0].getsockname()[:2]
        before = SwitchSession.timed_out["handshake"]
        # Slowloris: a HELLO, then a byte of its FEATURES_REPLY every 0.1 s.
        reader, writer = await asyncio.open_connection(*address)
        writer.write(pack(4, OFPT.HELLO, 1))
        reply = pack(4, OFPT.FEATURES_REPLY, 100, (1).to_bytes(8, "big") + bytes(16))

        async def drip():
            for byte in reply:
                writer.write(bytes([byte]))
                await asyncio.sleep(0.1)

        dripping = asyncio.get_running_loop().create_task(drip())
        closed = await closed_within(reader, 2.0)
        dripping.cancel()
        # A switch that does finish in time is not touched.
        switch = await Switch.connect(address)
        kept = not await closed_within(switch.reader, 1.0)
        for server in (relay, primary):
            server.close()
        return closed, kept, SwitchSession.timed_out["handshake"] - before

    from peers import Switch

    closed, kept, counted = asyncio.run(scenario())
    assert closed and counted == 1
    assert kept


def test_a_switch_that_goes_silent_is_closed_and_one_that_talks_is_not():
    from peers import Switch
    from sdn_ha_mirror.relay import SwitchSession

    async def scenario():
        relay, primary, _ = await relay_against(handshake_timeout=30, idle_timeout=0.6)
        address = relay.sockets[0].getsockname()[:2]
        before = SwitchSession.timed_out["idle"]
        silent = await Switch.connect(address)
        talking = await Switch.connect(address)

        async def talk():
            for _ in range(12):
                talking.writer.write(pack(4, OFPT.ECHO_REPLY, 9))
                await asyncio.sleep(0.2)

        talker = asyncio.get_running_loop().create_task(talk())
        silent_closed = await closed_within(silent.reader, 2.0)
        await talker
        talking_closed = await closed_within(talking.reader, 0.1)
        for server in (relay, primary):
            server.close()
        return silent_closed, talking_closed, SwitchSession.timed_out["idle"] - before

    silent_closed, talking_closed, counted = asyncio.run(scenario())
    assert silent_closed and counted == 1
    assert not talking_closed


def test_a_primary_path_that_never_answers_the_connect_is_given_up(monkeypatch):
    from sdn_ha_mirror import relay as relay_module

    monkeypatch.setattr(relay_module, "CONNECT_TIMEOUT", 0.3)

    async def scenario():
        # A listener whose backlog is full: the relay's SYN is never answered.
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        fillers = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(listener.getsockname())
            fillers.append(filler)
        config = Settings(primary=listener.getsockname()[:2])
        relay = await relay_module.start_server(config, host="127.0.0.1", port=0)
        reader, writer = await asyncio.open_connection(*relay.sockets[0].getsockname()[:2])
        writer.write(pack(4, OFPT.HELLO, 1))
        closed = await closed_within(reader, 3.0)
        relay.close()
        for sock in (listener, *fillers):
            sock.close()
        return closed

    assert asyncio.run(scenario())


def test_the_metrics_endpoint_is_bounded_in_time_line_length_and_connections():
    from peers import free_port, sidecar_process
    from sdn_ha_mirror.__main__ import METRICS_CONNECTIONS, METRICS_TIMEOUT

    sidecar, _, metrics = sidecar_process(free_port())

    def scrape() -> bytes:
        with socket.create_connection(("127.0.0.1", metrics), timeout=3) as sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            page = b""
            while chunk := sock.recv(65536):
                page += chunk
            return page

    def closed(sock: socket.socket) -> bool:
        try:
            return sock.recv(1) == b""
        except ConnectionError:
            return True

    try:
        with socket.create_connection(("127.0.0.1", metrics), timeout=3) as long_line:
            long_line.sendall(b"GET /" + b"x" * 70_000)
            assert closed(long_line)  # not a traceback, and no page
        idle = [socket.create_connection(("127.0.0.1", metrics)) for _ in range(METRICS_CONNECTIONS)]
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", metrics), timeout=3) as one_too_many:
            one_too_many.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            assert closed(one_too_many)
        for sock in idle:  # the idle ones are closed once their time is up
            sock.settimeout(METRICS_TIMEOUT + 3)
            assert closed(sock)
            sock.close()
        assert b"sdn_ha_mirror_sessions 0" in scrape()  # and scrapes work again
    finally:
        sidecar.terminate()
        _, errors = sidecar.communicate(timeout=10)
    assert "Traceback" not in errors and '"exception"' not in errors, errors


def test_a_stopped_mirror_closes_its_sessions_and_leaves_no_task_behind():
    import signal
    import threading

    from peers import sidecar_process

    primary = socket.create_server(("127.0.0.1", 0))
    held = []

    def accept():
        conn, _ = primary.accept()
        held.append(conn)
        while conn.recv(65536):
            pass

    threading.Thread(target=accept, daemon=True).start()
    sidecar, listen, _ = sidecar_process(primary.getsockname()[1], "--master", "127.0.0.1:9")
    with socket.create_connection(("127.0.0.1", listen), timeout=5) as switch:
        switch.sendall(pack(4, OFPT.HELLO, 1))
        deadline = time.monotonic() + 5
        while not held and time.monotonic() < deadline:
            time.sleep(0.05)
        assert held, "the session never reached the primary path"
        sidecar.send_signal(signal.SIGTERM)
        try:
            ended = switch.recv(1) == b""
        except ConnectionError:
            ended = True
    _, errors = sidecar.communicate(timeout=10)
    primary.close()
    assert ended and sidecar.returncode == 0
    assert "closed (session 1)" in errors, errors
    for sign in ("Traceback", "never retrieved", "was destroyed", '"exception"'):
        assert sign not in errors, errors


def test_event_loop_errors_are_logged_at_a_bounded_rate(caplog):
    from sdn_ha_mirror.__main__ import LoopErrors

    class Clock:
        now = 100.0

        def time(self):
            return self.now

    handler, clock = LoopErrors(), Clock()
    with caplog.at_level(logging.ERROR, logger="sdn_ha_mirror"):
        for _ in range(60_000):  # an accept loop out of file descriptors, within one second
            handler(clock, {"message": "socket.accept() out of system resource", "exception": OSError(24, "EMFILE")})
        clock.now += 1.0
        handler(clock, {"message": "the next second"})
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == LoopErrors.LINES_PER_SECOND + 2
    assert f"{60_000 - LoopErrors.LINES_PER_SECOND} more event loop errors" in lines[-2]


def test_a_session_refused_past_max_sessions_is_freed_at_once():
    import gc
    import weakref

    from peers import Primary
    from sdn_ha_mirror.relay import start_server

    async def run():
        primary_server = await asyncio.start_server(Primary().handle, "127.0.0.1", 0)
        sessions = []
        settings = Settings(primary=primary_server.sockets[0].getsockname()[:2], max_sessions=0)
        relay = await start_server(settings, on_close=sessions.append, host="127.0.0.1", port=0)
        reader, writer = await asyncio.open_connection(*relay.sockets[0].getsockname()[:2])
        await asyncio.sleep(0.2)
        assert await reader.read() == b""
        refused = [weakref.ref(obj) for obj in gc.get_objects() if type(obj).__name__ == "SwitchSession"]
        writer.close()
        for _ in range(10):
            await asyncio.sleep(0.01)
        relay.close()
        primary_server.close()
        return [ref for ref in refused if ref() is not None]

    gc.collect()
    gc.disable()
    try:
        alive = asyncio.run(run())
    finally:
        gc.enable()
    assert alive == []


def test_reading_resumes_only_when_no_reason_to_pause_is_left():
    from sdn_ha_mirror.relay import SwitchSession

    class Transport:
        paused = False

        def pause_reading(self):
            self.paused = True

        def resume_reading(self):
            self.paused = False

    session = SwitchSession(Settings())
    pipe = session.switch
    pipe.transport = Transport()
    pipe.hold("opening")
    pipe.hold("peer busy")  # the early bytes filled the primary path's buffer
    pipe.release("opening")  # the primary path is open
    assert pipe.transport.paused
    pipe.release("peer busy")
    assert not pipe.transport.paused
