"""The kernel capture: the BPF filter and the tap fed from it on loopback
(real TCP, real AF_PACKET copies), and reassembly of scripted segments."""

import asyncio
import socket
import struct

import pytest
from sdn_ha_mirror.capture import (
    WAIT,
    Capture,
    CaptureStats,
    PacketRing,
    Stream,
    find_boundary,
    parse,
)
from sdn_ha_mirror.master import Settings
from sdn_ha_mirror.openflow import OFPT, Framer, pack
from sdn_ha_mirror.shadow import SwitchView
from sdn_ha_mirror.tap import Tap

VIP = "127.0.0.2"
PORT_DESC = struct.pack("!HH4x", 13, 0)


def packet_in(n):
    return pack(4, OFPT.PACKET_IN, 1000 + n, bytes([n % 256]) * 120)


# -- reassembly, scripted -----------------------------------------------------
class Sink:
    def __init__(self):
        self.data = bytearray()
        self.gaps = []

    def stream(self, version=4):
        return Stream(self.data.extend, self.gaps.append, lambda: version)


def test_in_order_duplicate_and_reordered_segments_come_out_once_in_order():
    sink, stats = Sink(), CaptureStats()
    s = sink.stream()
    s.syn(99)
    a, b, c = packet_in(1), packet_in(2), packet_in(3)
    s.segment(100, a, 0, stats)
    s.segment(100, a, 0, stats)  # retransmitted
    s.segment(100 + 2 * len(a), c, 0, stats)  # ahead of b
    assert bytes(sink.data) == a
    s.segment(100 + len(a), b, 0, stats)
    assert bytes(sink.data) == a + b + c
    assert stats.duplicates == 1 and stats.out_of_order == 1 and sink.gaps == []


def test_a_partial_retransmission_overlapping_what_was_seen_is_trimmed():
    sink, stats = Sink(), CaptureStats()
    s = sink.stream()
    s.syn(0)
    a, b = packet_in(1), packet_in(2)
    s.segment(1, a[:50], 0, stats)
    s.segment(1, a + b, 0, stats)
    assert bytes(sink.data) == a + b


def test_sequence_numbers_wrap_around():
    sink, stats = Sink(), CaptureStats()
    s = sink.stream()
    s.syn((1 << 32) - 10)
    a = packet_in(1)
    s.segment((1 << 32) - 9, a, 0, stats)
    s.segment((1 << 32) - 9 + len(a) - (1 << 32), packet_in(2), 0, stats)
    assert bytes(sink.data) == a + packet_in(2)


def test_a_gap_that_never_fills_is_counted_and_the_stream_resumes_at_a_boundary():
    sink, stats = Sink(), CaptureStats()
    s = sink.stream()
    s.syn(0)
    a, b, c, d = (packet_in(n) for n in range(4))
    s.segment(1, a, 0.0, stats)
    # b and the first half of c were never copied
    s.segment(1 + len(a) + len(b) + 60, c[60:] + d, 0.0, stats)
    s.expire(0.1)
    assert bytes(sink.data) == a
    s.expire(1.0)
    assert sink.gaps == [len(b) + 60, len(c) - 60]
    assert bytes(sink.data) == a + d


def test_a_stream_picked_up_mid_flight_starts_at_the_first_whole_message():
    sink, stats = Sink(), CaptureStats()
    s = sink.stream()
    a, b = packet_in(1), packet_in(2)
    s.segment(5000, a[37:] + b, 0, stats)
    assert bytes(sink.data) == b and sink.gaps == [len(a) - 37]


def test_boundaries_are_found_only_where_headers_chain_to_the_end():
    msgs = packet_in(1) + pack(4, OFPT.ECHO_REQUEST, 7) + packet_in(2)
    assert find_boundary(msgs, 4)[0] == 0
    assert find_boundary(msgs[3:], 4)[0] == len(packet_in(1)) - 3
    assert find_boundary(msgs[:-5], 4)[0] == WAIT  # the last message is not whole yet
    assert find_boundary(b"\x04" * 300, 4)[0] == WAIT
    assert find_boundary(msgs, 5)[0] == WAIT  # not the session's version


def test_held_segments_are_bounded():
    sink, stats = Sink(), CaptureStats()
    s = sink.stream()
    s.syn(0)
    big = b"".join(packet_in(n) for n in range(480))  # 61 KB
    seq = 1 + 1000
    for _ in range(20):  # 1.2 MB ahead of a 1000-byte hole
        s.segment(seq, big, 0.0, stats)
        seq += len(big)
    assert sink.gaps and sink.gaps[0] == 1000
    assert len(sink.data) > 0


def test_frames_that_are_not_switch_sessions_are_not_parsed_as_such():
    assert parse(memoryview(bytes(20)), socket.inet_aton(VIP), frozenset({6653})) is None


# -- on loopback ----------------------------------------------------------------
def packet_socket(port):
    try:
        return PacketRing("lo", VIP, [port], 1 << 22)
    except PermissionError:
        pytest.skip("needs CAP_NET_RAW")


class Backup:
    """The backup controller the switch's session reaches."""

    def __init__(self):
        self.received = bytearray()

    async def handle(self, reader, writer):
        self.writer = writer
        writer.write(pack(4, OFPT.HELLO, 1) + pack(4, OFPT.FEATURES_REQUEST, 100))
        writer.write(pack(4, OFPT.MULTIPART_REQUEST, 101, PORT_DESC))
        await writer.drain()
        while data := await reader.read(65536):
            self.received += data
        writer.close()  # the controller closes its side too


class Master:
    def __init__(self):
        self.messages = []
        self.connections = 0

    async def handle(self, reader, writer):
        self.connections += 1
        writer.write(pack(4, OFPT.HELLO, 1) + pack(4, OFPT.FEATURES_REQUEST, 7))
        writer.write(pack(4, OFPT.FLOW_MOD, 8, bytes(48)))
        await writer.drain()
        framer = Framer()
        while data := await reader.read(65536):
            self.messages += framer.feed(data)


async def until(predicate, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def free_port():
    with socket.socket() as s:
        s.bind((VIP, 0))
        return s.getsockname()[1]


async def capture_lab(packet_ins, late=False, close_at_once=False):
    port = free_port()
    sock = packet_socket(port)
    backup, master = Backup(), Master()
    backup_server = await asyncio.start_server(backup.handle, VIP, port)
    master_server = await asyncio.start_server(master.handle, "127.0.0.1", 0)
    settings = Settings(master=master_server.sockets[0].getsockname()[:2])
    flows, active, views = [], [not late], {}

    def new_tap(peer, mid_flight):
        # stands in for the view sync: the view the other LB learned
        return Tap(settings, str(peer), views.get(peer) if mid_flight else None)

    capture = Capture(sock, VIP, [port], new_tap, on_open=flows.append)
    capture.is_active = lambda: active[0]
    runner = asyncio.get_running_loop().create_task(capture.run())
    try:
        reader, writer = await asyncio.open_connection(VIP, port)
        framer, got = Framer(), []
        while len(got) < 3:
            got += framer.feed(await asyncio.wait_for(reader.read(65536), 5))
        writer.write(pack(4, OFPT.HELLO, 1))
        writer.write(pack(4, OFPT.FEATURES_REPLY, 100, bytes.fromhex("0000000000000001") + bytes(16)))
        writer.write(pack(4, OFPT.MULTIPART_REPLY, 101, PORT_DESC + bytes(64)))
        await writer.drain()
        if late:
            await asyncio.sleep(0.3)
            assert not flows  # the LB is standby: nothing captured
            view = SwitchView()
            for m in Framer().feed(bytes(backup.received)):
                view.learn(m)
            views[writer.get_extra_info("sockname")[:2]] = view
            # The LB takes the VIP over in the middle of a message: its head went by before.
            writer.write(packet_in(999)[:40])
            await writer.drain()
            await asyncio.sleep(0.2)
            active[0] = True
            await asyncio.sleep(0.2)
            writer.write(packet_in(999)[40:])
            await writer.drain()
            await asyncio.sleep(0.1)
            assert not flows  # the switch's side alone proves nothing: held
            backup.writer.write(pack(4, OFPT.ECHO_REQUEST, 77))  # this LB forwards the controller's side
        await until(lambda: flows and flows[0].master_ready.is_set())
        for n in range(packet_ins):
            writer.write(packet_in(n))
            await writer.drain()
        if close_at_once:  # the session ends while copies still wait for the master
            writer.close()
        await until(lambda: sum(m.type == OFPT.PACKET_IN for m in master.messages) >= packet_ins)
        await asyncio.sleep(0.2)
        writer.close()
        await until(lambda: not capture.flows)
        return flows[0], master, capture
    finally:
        runner.cancel()
        sock.close()
        backup_server.close()
        master_server.close()


def test_the_master_gets_every_packet_in_of_a_captured_session():
    flow, master, capture = asyncio.run(capture_lab(100))
    ins = [m for m in master.messages if m.type == OFPT.PACKET_IN]
    assert [m.data for m in ins] == [packet_in(n) for n in range(100)]
    c = flow.tap.counters
    assert c.consistent() and c.mirrored_messages == 100 and c.unseen_bytes == 0
    assert c.swallowed_messages == 1  # the master's FLOW_MOD
    # the master's FEATURES_REQUEST was answered from the switch's reply, with its own xid
    assert flow.tap.view.features is not None
    # loopback shows every frame twice: the copies were deduplicated
    assert capture.stats.duplicates > 0


def test_a_session_picked_up_mid_flight_feeds_the_master_from_the_next_whole_message():
    flow, master, capture = asyncio.run(capture_lab(50, late=True))
    ins = [m.data for m in master.messages if m.type == OFPT.PACKET_IN]
    assert ins == [packet_in(n) for n in range(50)]
    c = flow.tap.counters
    assert c.consistent() and c.mirrored_messages == 50
    assert c.unseen_bytes == len(packet_in(999)) - 40  # the tail of the cut message
    assert capture.stats.ignored > 0  # what the standby saw


def test_copies_queued_when_the_session_ends_still_reach_the_master():
    flow, master, _ = asyncio.run(capture_lab(2000, close_at_once=True))
    assert sum(m.type == OFPT.PACKET_IN for m in master.messages) == 2000
    assert flow.tap.counters.consistent() and flow.tap.counters.unseen_bytes == 0


def test_a_long_chain_proves_a_boundary_before_the_data_ends_at_one():
    msgs = b"".join(packet_in(n) for n in range(6))
    assert find_boundary(msgs[50:-30], 4)[0] == len(packet_in(0)) - 50
    assert find_boundary(msgs[50 : 50 + 3 * 128], 4)[0] == WAIT  # two whole ones and a cut one: not yet


def test_bytes_still_waiting_when_a_session_ends_are_counted_as_never_seen():
    from sdn_ha_mirror.capture import Segment

    settings = Settings()
    capture = Capture(None, VIP, [6653], lambda peer, mid: Tap(settings, str(peer)), is_active=lambda: True)
    capture.active = True
    key = (socket.inet_aton("198.18.1.10"), 40000)
    capture.handle(Segment(key, True, 0, 0x02, b""), 0.0)  # SYN
    a, b = packet_in(1), packet_in(2)
    capture.handle(Segment(key, True, 1, 0x18, a + b[:50]), 0.0)
    capture.handle(Segment(key, True, 1 + len(a) + len(b) + 10, 0x18, packet_in(3)), 0.0)  # after a hole
    tap = capture.flows[key].tap
    capture.handle(Segment(key, True, 0, 0x14, b""), 0.0)  # RST
    assert tap.counters.relayed_messages == 1
    assert tap.counters.unseen_bytes == 50 + len(packet_in(3))


def scripted_capture(**options):
    settings = Settings()
    capture = Capture(None, VIP, [6653], lambda peer, mid: Tap(settings, str(peer)), is_active=lambda: True, **options)
    capture.active = True
    return capture


def test_a_frame_that_arrives_from_the_vip_is_forged_and_ignored():
    from sdn_ha_mirror.capture import parse

    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 40 + 8, 0, 0, 64, 6, 0, socket.inet_aton(VIP), socket.inet_aton("10.0.0.1")
    )
    tcp = struct.pack("!HHIIBBHHH", 6653, 40000, 1, 0, 5 << 4, 0x18, 65535, 0, 0)
    frame = memoryview(bytes(12) + b"\x08\x00" + ip + tcp + pack(4, OFPT.ECHO_REQUEST, 1))
    vip = socket.inet_aton(VIP)
    assert parse(frame, vip, frozenset({6653}), outgoing=True).switch == (socket.inet_aton("10.0.0.1"), 40000, 6653)
    assert parse(frame, vip, frozenset({6653}), outgoing=False) is None


def test_the_switch_side_alone_opens_no_session_and_is_forgotten():
    from sdn_ha_mirror.capture import UNPROVEN_SECONDS, Segment

    capture = scripted_capture()
    key = (socket.inet_aton("192.0.2.66"), 40000, 6653)
    capture.handle(Segment(key, True, 5, 0x18, pack(4, OFPT.HELLO, 1) + packet_in(1)), 0.0)
    assert capture.flows == {} and key in capture.unproven
    capture.ring = type("R", (), {"drops": lambda self: 0})()
    capture.is_active = lambda: True
    import time as clock

    capture.unproven[key][0] = (capture.unproven[key][0][0], clock.monotonic() - UNPROVEN_SECONDS - 1)
    capture.tick()
    assert capture.unproven == {}


def test_a_reset_far_from_the_stream_is_ignored_and_sessions_are_capped():
    from sdn_ha_mirror.capture import Segment

    capture = scripted_capture(max_flows=1)
    key = (socket.inet_aton("198.18.1.10"), 40000, 6653)
    capture.handle(Segment(key, True, 1000, 0x02, b""), 0.0)
    capture.handle(Segment(key, True, 1001 + (1 << 30), 0x14, b""), 0.0)
    assert key in capture.flows and capture.stats.out_of_window == 1
    other = (socket.inet_aton("198.18.1.11"), 40000, 6653)
    capture.handle(Segment(other, True, 5, 0x02, b""), 0.0)
    assert other not in capture.flows and capture.stats.refused == 1
    capture.handle(Segment(key, True, 1001, 0x14, b""), 0.0)
    assert capture.flows == {}


def test_a_block_s_segments_are_joined_per_direction_and_the_controller_s_go_first():
    from sdn_ha_mirror.capture import Batch, Segment

    handled = []
    batch = Batch(handled.append)
    key = (socket.inet_aton("198.18.1.10"), 40000, 6653)
    a, b, c = packet_in(1), packet_in(2), packet_in(3)
    request = pack(4, OFPT.BARRIER_REQUEST, 9)
    batch.add(Segment(key, True, 100, 0x18, a))
    batch.add(Segment(key, False, 500, 0x18, request))
    batch.add(Segment(key, True, 100 + len(a), 0x18, b))
    assert handled == []  # nothing is handled before the block ends or a run breaks
    batch.add(Segment(key, True, 100 + len(a) + len(b) + 7, 0x18, c))  # after a hole: the runs so far go on
    assert handled == [Segment(key, False, 500, 0x18, request), Segment(key, True, 100, 0x18, a + b)]
    batch.add(Segment(key, True, 0, 0x11, b""))  # a FIN: what waits goes first, then the FIN
    assert handled[2:] == [Segment(key, True, 100 + len(a) + len(b) + 7, 0x18, c), Segment(key, True, 0, 0x11, b"")]
    batch.add(Segment(key, True, 2**32 - 3, 0x18, b"abc"))  # a run that wraps the sequence space
    batch.add(Segment(key, True, 0, 0x18, b"def"))
    batch.flush()
    assert handled[4:] == [Segment(key, True, 2**32 - 3, 0x18, b"abcdef")]


def test_a_tail_the_capture_never_saw_is_counted_when_the_switch_closes():
    from sdn_ha_mirror.capture import Segment

    capture = scripted_capture()
    key = (socket.inet_aton("198.18.1.10"), 40000, 6653)
    capture.handle(Segment(key, True, 0, 0x02, b""), 0.0)  # SYN
    capture.handle(Segment(key, False, 500, 0x18, pack(4, OFPT.HELLO, 1)), 0.0)
    a, b, c = packet_in(1), packet_in(2), packet_in(3)
    capture.handle(Segment(key, True, 1, 0x18, a), 0.0)
    capture.handle(Segment(key, True, 1 + len(a) + len(b), 0x18, c[:40]), 0.0)  # held after a hole
    tap = capture.flows[key].tap
    end = 1 + len(a) + len(b) + len(c)  # c's last bytes were never copied either
    capture.handle(Segment(key, True, end, 0x11, b""), 0.0)  # the switch's FIN
    capture.handle(Segment(key, False, 508, 0x11, b""), 0.0)  # the controller's FIN: the session ends
    assert key not in capture.flows
    assert tap.counters.relayed_messages == 1
    assert tap.counters.unseen_bytes == len(b) + len(c)  # the hole, what was held after it, the lost tail


def test_an_rst_after_the_switch_s_fin_adds_nothing_unseen():
    from sdn_ha_mirror.capture import Segment

    capture = scripted_capture()
    key = (socket.inet_aton("198.18.1.10"), 40000, 6653)
    capture.handle(Segment(key, True, 0, 0x02, b""), 0.0)  # SYN
    capture.handle(Segment(key, False, 500, 0x18, pack(4, OFPT.HELLO, 1)), 0.0)
    a = packet_in(1)
    capture.handle(Segment(key, True, 1, 0x18, a), 0.0)
    tap = capture.flows[key].tap
    capture.handle(Segment(key, True, 1 + len(a), 0x11, b""), 0.0)  # FIN: every byte was seen
    capture.handle(Segment(key, True, 2 + len(a), 0x04, b""), 0.0)  # the RST that follows, one past it
    assert key not in capture.flows and tap.counters.unseen_bytes == 0


def test_a_ring_block_that_fails_is_still_given_back():
    class Ring:
        blocks, buffer = 2, b""

        def __init__(self):
            self.ready_blocks, self.released = [0], []

        def ready(self):
            return self.ready_blocks.pop() if self.ready_blocks else None

        def frames(self, block):
            raise RuntimeError("a bug")

        def release(self, block):
            self.released.append(block)

    capture = scripted_capture()
    capture.ring = Ring()
    capture.readable()
    assert capture.ring.released == [0]


def test_a_captured_session_that_ends_is_freed_at_once_not_by_the_cycle_collector():
    import gc
    import weakref

    from sdn_ha_mirror.capture import Segment

    capture = scripted_capture()
    key = (socket.inet_aton("198.18.1.10"), 40000, 6653)
    gc.collect()
    gc.disable()
    try:
        capture.handle(Segment(key, True, 0, 0x02, b""), 0.0)  # SYN
        capture.handle(Segment(key, True, 1, 0x18, packet_in(1) + packet_in(2)[:50]), 0.0)
        flow = weakref.ref(capture.flows[key])
        tap = weakref.ref(capture.flows[key].tap)
        capture.handle(Segment(key, True, 0, 0x14, b""), 0.0)  # RST
        assert key not in capture.flows
        assert flow() is None and tap() is None
    finally:
        gc.enable()


def test_a_captured_claim_of_an_id_not_bound_to_the_address_never_reaches_the_master(tmp_path):
    """The capture sees a copy of every byte, also those the identity gate
    drops: a switch address that claims another switch's datapath id, and
    sends its port descriptions unasked, must not get the master a second
    session for that switch."""
    from sdn_ha_mirror.capture import Segment
    from sdn_ha_mirror.identity import Bindings

    path = tmp_path / "bindings.json"
    path.write_text('{"198.18.1.10": ["0x1"], "198.18.1.100": ["0x1000"]}')
    bindings = Bindings(str(path))
    settings = Settings(bindings=bindings)
    capture = Capture(
        None, VIP, [6653], lambda peer, mid: Tap(settings, str(peer), address=peer[0]), is_active=lambda: True
    )
    capture.active = True
    handshake = lambda dpid: (  # noqa: E731
        pack(4, OFPT.HELLO, 1)
        + pack(4, OFPT.FEATURES_REPLY, 100, dpid.to_bytes(8, "big") + bytes(16))
        + pack(4, OFPT.MULTIPART_REPLY, 101, PORT_DESC + bytes(64))
        + packet_in(1)
    )
    taps = {}
    for address, dpid in (("198.18.1.100", 0x1), ("198.18.1.10", 0x1)):
        key = (socket.inet_aton(address), 40000)
        capture.handle(Segment(key, True, 0, 0x02, b""), 0.0)  # SYN
        capture.handle(Segment(key, True, 1, 0x18, handshake(dpid)), 0.0)
        taps[address] = capture.flows[key].tap
    rogue, switch = taps["198.18.1.100"], taps["198.18.1.10"]
    assert "0x1" in rogue.refusal and not rogue.view.ready and rogue.view.features is None
    # counted all the same: 4 messages seen whole, none for the master
    assert rogue.counters.mirrored_messages == 0 and rogue.counters.consistent()
    assert rogue.counters.relayed_bytes == len(handshake(1)) and rogue.counters.relayed_messages == 4
    assert not switch.refusal and switch.view.ready and switch.counters.relayed_messages == 4  # no master here: dropped
    assert bindings.refused == 1


def test_a_session_that_starts_as_the_lb_takes_the_vip_over_is_captured_from_its_syn():
    """The VIP came here after the last tick: the switch's SYN must not be
    ignored, or the session is picked up mid-flight with no view."""
    switch = socket.inet_aton("198.18.8.100")
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0, 64, 6, 0, switch, socket.inet_aton(VIP))
    syn = bytes(12) + b"\x08\x00" + ip + struct.pack("!HHIIBBHHH", 40000, 6653, 1000, 0, 5 << 4, 0x02, 65535, 0, 0)

    class Ring:
        blocks, buffer = 1, syn

        def ready(self):
            return 0

        def frames(self, block):
            return [(0, len(syn), len(syn), False)]

        def release(self, block):
            pass

    holds, opened, settings = [False], [], Settings()

    def new_tap(peer, mid_flight):
        opened.append((peer, mid_flight))
        return Tap(settings, str(peer))

    capture = Capture(Ring(), VIP, [6653], new_tap, is_active=lambda: holds[0])
    capture.readable()
    assert capture.stats.ignored == 1 and not capture.active  # standby: ignored
    holds[0] = True  # keepalived adds the VIP; the next tick is up to 0.1 s away, and the
    capture.readable()  # last read was just now: a SYN is read for all that
    assert capture.active and capture.stats.ignored == 1
    assert opened == [(("198.18.8.100", 40000), False)]  # from its SYN, not mid-flight
