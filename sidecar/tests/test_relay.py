"""The relay with scripted OpenFlow peers on loopback: a switch, the primary
path (standing in for HAProxy and a backup controller) and the master."""

import asyncio
import socket
import struct

from peers import PORT_DESC, Master, Masters, Primary, Switch, read_messages, sidecar_with, until
from sdn_ha_mirror.openflow import OFPT, Framer, pack
from sdn_ha_mirror.relay import PROXY_V2_SIGNATURE, Settings, SwitchSession, proxy_v2_header, start_server


async def run_lab(with_master: bool, packet_ins: int = 50):
    primary, master, sessions = Primary(), Master(), []
    primary_server = await asyncio.start_server(primary.handle, "127.0.0.1", 0)
    master_server = await asyncio.start_server(master.handle, "127.0.0.1", 0)
    master_addr = master_server.sockets[0].getsockname()[:2]
    if not with_master:
        master_server.close()
        await master_server.wait_closed()
    settings = Settings(primary=primary_server.sockets[0].getsockname()[:2], master=master_addr)

    sidecar = await start_server(settings, on_open=sessions.append, host="127.0.0.1", port=0)
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
    session.peer = ("198.18.1.10", 40000)
    again = SwitchSession(Settings())
    again.peer = ("198.18.1.10", 40001)  # the same switch, reconnected
    again.queue.counters.relayed_messages = 4
    registry.live.add(again)
    text = registry.render()
    assert 'sdn_ha_mirror_switch_relayed_messages{switch="198.18.1.10"} 7' in text
    assert "session=" not in text and "40000" not in text  # one series per switch, not per session
    # The gauge and the counter must not share a name once "_total" is stripped.
    from ansible_collections.sdn_ha.control_plane.plugins.plugin_utils.status import mirror_counters

    assert mirror_counters(text)["sessions"] == 2


def test_the_master_is_reconnected_and_gets_only_what_comes_after():
    async def scenario():
        masters = Masters()
        switch, sessions, servers = await sidecar_with(masters)
        await until(lambda: len(masters.connections) == 2)
        session = sessions[0]
        await until(session.master_ready.is_set)
        await switch.packet_ins(range(20))
        await until(lambda: sum(m.type == OFPT.PACKET_IN for m in masters.connections[1]) == 20)
        switch.writer.close()
        for server in servers:
            server.close()
        return masters, session.queue.counters

    masters, counters = asyncio.run(scenario())
    packet_ins = [m for m in masters.connections[1] if m.type == OFPT.PACKET_IN]
    assert [int.from_bytes(m.body[:4], "big") for m in packet_ins] == list(range(20))
    assert counters.mirrored_messages == 20 and counters.consistent()


def test_an_uncached_request_waits_for_the_backups_reply_or_gets_an_error():
    port_stats = pack(4, OFPT.MULTIPART_REQUEST, 40, struct.pack("!HH4x", 4, 0))  # OFPMP_PORT_STATS
    table_stats = pack(4, OFPT.MULTIPART_REQUEST, 41, struct.pack("!HH4x", 3, 0))  # OFPMP_TABLE_STATS

    async def scenario():
        masters = Masters(script=[port_stats, table_stats])
        masters.connections.append([])  # no cut: this master stays
        switch, sessions, servers = await sidecar_with(masters, hold_timeout=0.5)
        await until(lambda: len(masters.connections) == 2 and sessions[0].master_ready.is_set())
        await asyncio.sleep(0.1)
        # The backup polls port stats; the switch's reply answers the master too.
        switch.writer.write(pack(4, OFPT.MULTIPART_REPLY, 0, struct.pack("!HH4x", 4, 0) + bytes(112)))
        await switch.writer.drain()
        got = masters.connections[1]
        await until(lambda: any(m.type == OFPT.ERROR for m in got))
        switch.writer.close()
        for server in servers:
            server.close()
        return got, sessions[0].queue.counters

    got, counters = asyncio.run(scenario())
    reply = next(m for m in got if m.type == OFPT.MULTIPART_REPLY)
    assert reply.xid == 40 and reply.body[:2] == b"\x00\x04"
    error = next(m for m in got if m.type == OFPT.ERROR)
    assert error.xid == 41 and error.body[:4] == struct.pack("!HH", 1, 2) and error.body[4:] == table_stats
    assert counters.unanswered_messages == 1


def test_a_silent_switch_is_given_up_on_by_tcp_keepalive():
    async def scenario():
        switch, sessions, servers = await sidecar_with(Masters(), switch_timeout=12)
        sock = sessions[0].switch.transport.get_extra_info("socket")
        options = (
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
        )
        switch.writer.close()
        await until(sessions[0].closed.is_set)
        for server in servers:
            server.close()
        return options

    assert asyncio.run(scenario()) == (1, 4, 2, 4, 12000)


def test_hostile_bytes_close_only_their_own_session():
    async def scenario():
        switch, sessions, servers = await sidecar_with(Masters())
        other = await Switch.connect(servers[0].sockets[0].getsockname()[:2])
        switch.writer.write(b"GET / HTTP/1.0\r\n\r\n")
        await switch.writer.drain()
        await until(sessions[0].closed.is_set)
        await other.packet_ins(range(5))
        await asyncio.sleep(0.1)
        alive = not sessions[1].closed.is_set()
        other.writer.close()
        for server in servers:
            server.close()
        return alive, sessions[1].queue.counters

    alive, counters = asyncio.run(scenario())
    assert alive and counters.relayed_messages >= 5 + 3


def test_bytes_before_the_primary_path_is_open_are_held_not_lost():
    class Transport:
        paused = False

        def pause_reading(self):
            self.paused = True

    session = SwitchSession(Settings())
    session.switch.transport = Transport()
    hello = pack(4, OFPT.HELLO, 1)
    session.switch.data_received(hello)  # older Pythons deliver this despite the pause
    assert session.switch.early == [hello] and session.switch.transport.paused
    # The primary path is connected but has no PROXY header yet: still held.
    session.primary.transport = Transport()
    session.switch.data_received(hello)
    assert session.switch.early == [hello, hello]


async def claim(tmp_path, dpid: int, bound: dict, split: int = 11, then: bytes = b""):
    """A switch on loopback (127.0.0.1) behind a sidecar with `bound` as its
    bindings: HELLO, then a FEATURES_REPLY claiming `dpid`, written in two
    pieces cut at byte `split`, then a PACKET_IN. What the primary path
    received, what the switch read before the end, and the refusals."""
    import json

    from sdn_ha_mirror.identity import Bindings

    path = tmp_path / "bindings.json"
    path.write_text(json.dumps(bound))
    primary = Primary()
    primary_server = await asyncio.start_server(primary.handle, "127.0.0.1", 0)
    bindings = Bindings(str(path))
    settings = Settings(primary=primary_server.sockets[0].getsockname()[:2], bindings=bindings)
    sidecar = await start_server(settings, host="127.0.0.1", port=0)
    reader, writer = await asyncio.open_connection(*sidecar.sockets[0].getsockname()[:2])
    writer.write(pack(4, OFPT.HELLO, 1))
    handshake = await read_messages(reader, 3)
    features = pack(4, OFPT.FEATURES_REPLY, 100, dpid.to_bytes(8, "big") + bytes(16))
    writer.write(features[:split])
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.write(features[split:] + then + pack(4, OFPT.PACKET_IN, 0, bytes(40)))
    await writer.drain()
    ended = False
    try:
        ended = await asyncio.wait_for(reader.read(), 1.0) == b""
    except TimeoutError:
        pass
    except ConnectionError:
        ended = True
    writer.close()
    await asyncio.sleep(0.05)
    for server in (sidecar, primary_server):
        server.close()
    types = [m.type for m in Framer().feed(bytes(primary.received))]
    return types, [m.type for m in handshake], ended, bindings.refused


def test_a_datapath_id_bound_to_the_address_opens_the_session(tmp_path):
    types, handshake, ended, refused = asyncio.run(claim(tmp_path, 0x1, {"127.0.0.1": ["0x1"]}))
    assert handshake == [OFPT.HELLO, OFPT.FEATURES_REQUEST, OFPT.MULTIPART_REQUEST]
    assert types == [OFPT.HELLO, OFPT.FEATURES_REPLY, OFPT.PACKET_IN]
    assert not ended and refused == 0


def test_a_datapath_id_bound_elsewhere_is_refused_before_the_controller_sees_it(tmp_path):
    bound = {"127.0.0.1": ["0x1000"], "198.18.1.10": ["0x1"]}
    for split in (3, 11, 20):  # the header, the datapath id, the rest cut apart
        types, _, ended, refused = asyncio.run(claim(tmp_path, 0x1, bound, split))
        assert types == [OFPT.HELLO], split  # the claim and all after it never reached the controller
        assert ended and refused == 1


def test_an_address_with_no_binding_is_refused(tmp_path):
    types, _, ended, refused = asyncio.run(claim(tmp_path, 0x1, {"198.18.1.10": ["0x1"]}))
    assert types == [OFPT.HELLO] and ended and refused == 1


def test_bindings_that_cannot_be_read_on_reload_keep_those_in_force(tmp_path):
    from sdn_ha_mirror.identity import Bindings

    path = tmp_path / "bindings.json"
    path.write_text('{"198.18.1.10": ["0x1"]}')
    bindings = Bindings(str(path))
    path.write_text('{"198.18.1.10": "0x1"}')  # not a list
    bindings.reload()
    assert bindings.allows("198.18.1.10", 1)
    path.write_text('{"198.18.1.10": ["0x2"]}')
    bindings.reload()
    assert bindings.allows("198.18.1.10", 2) and not bindings.allows("198.18.1.10", 1)


def test_a_second_features_reply_with_another_datapath_id_is_refused(tmp_path):
    """A controller in its handshake takes the last FEATURES_REPLY it got: a
    switch may not prove its own id and then claim another's."""
    bound = {"127.0.0.1": ["0x1000"], "198.18.1.10": ["0x1"]}
    second = pack(4, OFPT.FEATURES_REPLY, 100, (0x1).to_bytes(8, "big") + bytes(16))
    # The write that carries the second claim never goes on, nor does anything after it.
    types, _, ended, refused = asyncio.run(claim(tmp_path, 0x1000, bound, then=second))
    assert types == [OFPT.HELLO] and ended and refused == 1
    # An address bound to two ids (a host running two datapaths) still keeps to the one it proved.
    other = pack(4, OFPT.FEATURES_REPLY, 101, (0x2000).to_bytes(8, "big") + bytes(16))
    two = {"127.0.0.1": ["0x1000", "0x2000"]}
    types, _, ended, refused = asyncio.run(claim(tmp_path, 0x1000, two, then=other))
    assert types == [OFPT.HELLO] and ended and refused == 1
    again = pack(4, OFPT.FEATURES_REPLY, 101, (0x1000).to_bytes(8, "big") + bytes(16))
    types, _, ended, refused = asyncio.run(claim(tmp_path, 0x1000, bound, then=again))
    assert types == [OFPT.HELLO, OFPT.FEATURES_REPLY, OFPT.FEATURES_REPLY, OFPT.PACKET_IN]
    assert not ended and refused == 0


def test_a_switch_that_never_says_who_it_is_is_closed(tmp_path):
    from sdn_ha_mirror.identity import GATE_LIMIT

    echoes = pack(4, OFPT.ECHO_REQUEST, 1, bytes(1000)) * (GATE_LIMIT // 1000 + 2)

    async def run():
        import json

        from sdn_ha_mirror.identity import Bindings

        path = tmp_path / "bindings.json"
        path.write_text(json.dumps({"127.0.0.1": ["0x1"]}))
        primary = Primary()
        primary_server = await asyncio.start_server(primary.handle, "127.0.0.1", 0)
        settings = Settings(primary=primary_server.sockets[0].getsockname()[:2], bindings=Bindings(str(path)))
        sidecar = await start_server(settings, host="127.0.0.1", port=0)
        reader, writer = await asyncio.open_connection(*sidecar.sockets[0].getsockname()[:2])
        writer.write(pack(4, OFPT.HELLO, 1) + echoes)
        try:
            while await asyncio.wait_for(reader.read(65536), 2.0):
                pass
            ended = True
        except ConnectionError:
            ended = True
        except TimeoutError:
            ended = False
        writer.close()
        for server in (sidecar, primary_server):
            server.close()
        return ended

    assert asyncio.run(run())


def test_the_check_ends_with_the_handshake_and_the_relay_is_byte_for_byte_again(tmp_path):
    """After the switch's last PORT_DESC part (OpenFlow 1.3), a FEATURES_REPLY
    is ignored by the controller, and the relay stops framing."""
    more = pack(4, OFPT.MULTIPART_REPLY, 101, struct.pack("!HH4x", 13, 1) + bytes(64))  # REPLY_MORE set
    last = pack(4, OFPT.MULTIPART_REPLY, 101, struct.pack("!HH4x", 13, 0) + bytes(64))
    late = pack(4, OFPT.FEATURES_REPLY, 102, (0x1).to_bytes(8, "big") + bytes(16))
    bound = {"127.0.0.1": ["0x1000"]}
    types, _, ended, refused = asyncio.run(claim(tmp_path, 0x1000, bound, then=more + late))
    assert ended and refused == 1  # still in the handshake: checked
    types, _, ended, refused = asyncio.run(claim(tmp_path, 0x1000, bound, then=more + last + late))
    assert types == [OFPT.HELLO, OFPT.FEATURES_REPLY, *[OFPT.MULTIPART_REPLY] * 2, OFPT.FEATURES_REPLY, OFPT.PACKET_IN]
    assert not ended and refused == 0
