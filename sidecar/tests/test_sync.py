"""The view sync between the LBs, on loopback."""

import asyncio
import json
import socket
import struct

import pytest
from sdn_ha_mirror.openflow import OFPT, Framer, pack
from sdn_ha_mirror.shadow import SwitchView
from sdn_ha_mirror.sync import Channel, PeerSync, decode, encode

KEY = b"lab key, sixteen bytes or more"
PEER = ("127.0.0.1", 1)  # the other LB's sync address, as the standby under test knows it


def view():
    v = SwitchView()
    for data in (
        pack(4, OFPT.HELLO, 1),
        pack(4, OFPT.FEATURES_REPLY, 7, bytes.fromhex("0000000000000001") + bytes(16)),
        pack(4, OFPT.MULTIPART_REPLY, 8, struct.pack("!HH4x", 13, 0) + bytes(64)),
        pack(4, OFPT.MULTIPART_REPLY, 9, struct.pack("!HH4x", 1, 0) + bytes(96)),  # flow stats
    ):
        (m,) = Framer().feed(data)
        v.learn(m)
    return v


def test_a_view_survives_the_wire_without_its_counters():
    v = view()
    back = decode(json.loads(encode("198.18.1.10:40000", v)))
    assert back.ready and back.features == v.features and back.multipart[13] == v.multipart[13]
    assert 1 not in back.multipart  # flow stats are the backup's business, not shared


def test_the_generation_moves_only_when_a_shared_part_changes():
    v = view()
    g = v.generation
    (m,) = Framer().feed(pack(4, OFPT.MULTIPART_REPLY, 10, struct.pack("!HH4x", 1, 0) + bytes(48)))
    v.learn(m)
    assert v.generation == g
    (m,) = Framer().feed(pack(4, OFPT.MULTIPART_REPLY, 11, struct.pack("!HH4x", 13, 0) + bytes(128)))
    v.learn(m)
    assert v.generation == g + 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def until(predicate, timeout=5.0):
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


def test_the_active_pushes_views_and_ends_and_the_peer_takes_them_over():
    async def run():
        port = free_port()
        standby = PeerSync(("127.0.0.1", port), PEER, KEY)
        active = PeerSync(PEER, ("127.0.0.1", port), KEY)
        server = await standby.serve()
        sessions = {"198.18.1.10:40000": view(), "198.18.1.11:40001": view()}
        pusher = asyncio.get_running_loop().create_task(active.push(lambda: list(sessions.items())))
        try:
            await until(lambda: len(standby.known) == 2)
            del sessions["198.18.1.11:40001"]
            active.session_ended("198.18.1.11:40001")
            await until(lambda: len(standby.known) == 1)
            taken = standby.view_for("198.18.1.10:40000")
            assert taken.ready and standby.view_for("198.18.1.10:40000") is None
            return active.pushed
        finally:
            pusher.cancel()
            server.close()

    assert asyncio.run(run()) == 2


def test_only_the_peer_may_send_views():
    async def run():
        port = free_port()
        standby = PeerSync(("127.0.0.1", port), ("127.0.0.3", 1), KEY)
        server = await standby.serve()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(encode("198.18.1.10:40000", view()))
            try:
                await writer.drain()
                assert await asyncio.wait_for(reader.read(), 2) == b""  # closed on us
            except ConnectionResetError:
                pass  # closed with our record unread
            return standby.known
        finally:
            server.close()

    assert asyncio.run(run()) == {}


async def peer_session(port, key=KEY, me="127.0.0.1:1"):
    """A connection to a PeerSync as its peer would open it: nonces swapped,
    then the signed hello."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    channel = Channel(key, me, f"127.0.0.1:{port}", accepting=False)
    writer.write(channel.hello())
    await channel.greet(reader)
    writer.write(channel.seal(b'{"hello":true}'))
    return reader, writer, channel


async def refused(reader) -> bool:
    """Whether the other side ended the connection (after its own lines)."""
    try:
        while await asyncio.wait_for(reader.readline(), 2):
            pass
    except ConnectionResetError:
        pass
    return True


def standby_with(session, refusals=1):
    """What a standby knows after `session`; it counted `refusals` connections refused."""

    async def run():
        port = free_port()
        standby = PeerSync(("127.0.0.1", port), PEER, KEY)
        server = await standby.serve()
        try:
            await session(port, standby)
            await until(lambda: standby.refused == refusals)
            return list(standby.known)
        finally:
            server.close()

    return asyncio.run(run())


def test_a_bad_record_ends_the_connection_and_keeps_what_was_known():
    async def session(port, standby):
        reader, writer, channel = await peer_session(port)
        writer.write(channel.seal(encode("198.18.1.10:40000", view())))
        writer.write(channel.seal(b'{"switch": "x", "version": 4}'))
        await writer.drain()
        assert await refused(reader)

    assert standby_with(session) == ["198.18.1.10:40000"]


def test_a_record_signed_with_another_key_is_refused():
    async def session(port, standby):
        reader, writer, channel = await peer_session(port, key=b"not the lab's key, but as long")
        writer.write(channel.seal(encode("198.18.1.10:40000", view())))
        await writer.drain()
        assert await refused(reader)

    assert standby_with(session) == []


def test_a_line_replayed_from_another_connection_or_moved_is_refused():
    lines = []

    async def first(port, standby):
        _reader, writer, channel = await peer_session(port)
        for n in range(2):
            lines.append(channel.seal(encode(f"198.18.1.1{n}:40000", view())))
        writer.write(lines[0])
        await writer.drain()
        await until(lambda: standby.known)
        writer.close()

    async def replayed(port, standby):
        reader, writer, _ = await peer_session(port)
        writer.write(lines[0])
        await writer.drain()
        assert await refused(reader)

    async def moved(port, standby):
        reader, writer, channel = await peer_session(port)
        second, first_line = channel.seal(encode("198.18.1.11:40000", view())), channel.seal(b"{}")
        writer.write(first_line[:64] + second[64:])  # the second record under the first line's number
        await writer.drain()
        assert await refused(reader)

    assert standby_with(first, refusals=0) == ["198.18.1.10:40000"]
    assert standby_with(replayed) == []
    assert standby_with(moved) == []


def test_a_connection_that_does_not_start_with_a_nonce_is_dropped():
    async def session(port, standby):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(encode("198.18.1.10:40000", view()) + b"\n")
        await writer.drain()
        assert await refused(reader)

    assert standby_with(session) == []


def test_a_line_reflected_to_its_writer_or_signed_for_another_pair_is_refused():
    async def reflected(port, standby):
        # The standby's own nonce as ours: it would sign its dump for itself.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        nonce = (await reader.readline()).split()[1]
        writer.write(b"nonce " + nonce + b"\n")
        await writer.drain()
        assert await refused(reader)

    async def other_pair(port, standby):
        # The right key, but written as another LB than the standby's peer.
        reader, writer, channel = await peer_session(port, me="127.0.0.9:9311")
        writer.write(channel.seal(encode("198.18.1.10:40000", view())))
        await writer.drain()
        assert await refused(reader)

    async def server_side(port, standby):
        # A line signed as the accepting side's is not good from the connecting side.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        channel = Channel(KEY, "127.0.0.1:1", f"127.0.0.1:{port}", accepting=True)
        writer.write(channel.hello())
        await channel.greet(reader)
        writer.write(channel.seal(b'{"hello":true}'))
        await writer.drain()
        assert await refused(reader)

    for session in (reflected, other_pair, server_side):
        assert standby_with(session) == []


def test_a_hello_that_is_not_a_nonce_cannot_end_the_daemon():
    async def session(port, standby):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"[" * 200_000 + b"\n")
        await writer.drain()
        assert await refused(reader)

    assert standby_with(session) == []


def test_a_short_key_is_refused():
    with pytest.raises(ValueError, match="at least 16"):
        PeerSync(("127.0.0.1", 0), ("127.0.0.1", 1), b"short")


def test_a_restarted_mirror_gets_back_the_views_it_shared():
    async def run():
        port = free_port()
        standby = PeerSync(("127.0.0.1", port), PEER, KEY)
        standby.known["198.18.1.10:40000"] = view()  # shared before the active's mirror restarted
        server = await standby.serve()
        restarted = PeerSync(PEER, ("127.0.0.1", port), KEY)
        pusher = asyncio.get_running_loop().create_task(restarted.push(list))
        try:
            await until(lambda: "198.18.1.10:40000" in restarted.known)
            return restarted.view_for("198.18.1.10:40000")
        finally:
            pusher.cancel()
            server.close()

    assert asyncio.run(run()).ready


def test_views_saved_by_one_run_are_loaded_by_the_next(tmp_path):
    from sdn_ha_mirror.sync import load_views, save_views

    path = str(tmp_path / "views")
    unready = SwitchView(version=4)
    save_views(path, [("198.18.1.10:40000", view()), ("198.18.1.11:40001", unready)])
    known = load_views(path)
    assert list(known) == ["198.18.1.10:40000"] and known["198.18.1.10:40000"].ready
    assert load_views(str(tmp_path / "none")) == {}


def test_records_that_are_not_views_are_refused():
    good = json.loads(encode("198.18.1.10:40000", view()))
    for bad in ({**good, "version": 300}, {**good, "multipart": "x"}, {**good, "features": 7}):
        with pytest.raises((ValueError, TypeError, AttributeError)):
            decode(bad)


def test_a_peer_that_restarted_gets_every_live_view_again_at_once():
    """The active's connection to the peer's previous run still stands (a
    dead host answers nothing until it is back); the peer's new run says
    hello with a new boot id, and the active sends everything again on a new
    connection instead of into the old one."""

    async def run():
        port, active_port = free_port(), free_port()
        me, peer = ("127.0.0.1", active_port), ("127.0.0.1", port)
        active = PeerSync(me, peer, KEY)
        old = PeerSync(peer, me, KEY)
        servers = [await active.serve(), await old.serve()]
        sessions = {"198.18.1.10:40000": view()}
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(active.push(lambda: list(sessions.items()))), loop.create_task(old.push(list))]
        try:
            await until(lambda: "198.18.1.10:40000" in old.known and active.peer_boot == old.boot)
            # The peer's run ends without a word; its accepted connection stays
            # open (and keeps reading), as a vanished host's would look.
            tasks.pop().cancel()
            servers.pop().close()
            new = PeerSync(peer, me, KEY)
            servers.append(await new.serve())
            tasks.append(loop.create_task(new.push(list)))
            # The active heard the new run's hello, and the view got there.
            await until(lambda: active.peer_boot == new.boot and "198.18.1.10:40000" in new.known)
            return True
        finally:
            for task in tasks:
                task.cancel()
            for server in servers:
                server.close()

    assert asyncio.run(run())
