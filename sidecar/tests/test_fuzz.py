"""Fuzzing the code that reads what switches and masters send: framing,
accounting, the shadow session's answers, the identity gate and the
capture's reassembly. Each property holds for any input hypothesis finds;
the whole file runs in well under a minute."""

from __future__ import annotations

import itertools
import json
import struct
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sdn_ha_mirror.capture import CaptureStats, Stream
from sdn_ha_mirror.identity import Bindings, Gate
from sdn_ha_mirror.master import Settings
from sdn_ha_mirror.openflow import OFPT, Framer, FramingError, Message
from sdn_ha_mirror.shadow import SWALLOWED, SwitchView, answer, unavailable
from sdn_ha_mirror.tap import Tap

FUZZ = settings(max_examples=1000, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
BOUND, OTHER = 0x1, 0x2  # the datapath id bound to the switch's address, and one that is not
ADDRESS = "198.18.1.10"
PORT_DESC = 13


def message(version: int, kind: int, xid: int, body: bytes) -> bytes:
    return struct.pack("!BBHI", version, kind, 8 + len(body), xid) + body


bodies = st.binary(max_size=96)
kinds = st.sampled_from([*range(30), 200, 255])
# Messages a switch or a master could send, well framed, mostly OpenFlow 1.3.
messages = st.builds(message, st.sampled_from([4, 4, 4, 1, 5]), kinds, st.integers(0, 2**32 - 1), bodies)
features = st.builds(
    lambda dpid, xid: message(4, OFPT.FEATURES_REPLY, xid, dpid.to_bytes(8, "big") + bytes(16)),
    st.sampled_from([BOUND, OTHER]),
    st.integers(0, 9),
)
port_desc = st.builds(
    lambda more: message(4, OFPT.MULTIPART_REPLY, 3, struct.pack("!HH4x", PORT_DESC, more) + bytes(64)),
    st.sampled_from([0, 1]),
)
handshake_parts = st.one_of(messages, features, port_desc, st.binary(min_size=1, max_size=24))


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


cuts = st.lists(st.integers(0, 1 << 16), max_size=12)


@FUZZ
@given(st.lists(messages, max_size=20), cuts)
def test_framing_does_not_depend_on_where_the_stream_is_cut(stream, where):
    data = b"".join(stream)
    framer, got = Framer(), []
    for piece in chunks(data, where):
        got += [m.data for m in framer.feed(piece)]
    assert got == stream and framer.pending == 0


@FUZZ
@given(st.binary(max_size=300), cuts)
def test_any_bytes_frame_as_a_prefix_or_fail_the_same_way(data, where):
    def frame(pieces):
        framer, got = Framer(), []
        try:
            for piece in pieces:
                got += [m.data for m in framer.feed(piece)]
        except FramingError:
            return got, True
        return got, False

    whole, whole_failed = frame([data])
    cut, cut_failed = frame(chunks(data, where))
    assert cut == whole and cut_failed == whole_failed


@FUZZ
@given(st.lists(messages, max_size=30), st.lists(messages, max_size=10), cuts)
def test_every_message_a_switch_sends_is_counted_once(stream, requests, where):
    tap = Tap(Settings(), "fuzz")
    for request in requests:
        tap.from_controller(request)
    try:
        for piece in chunks(b"".join(stream), where):
            tap.from_switch(piece)
    except FramingError:
        return  # a version byte the scanner refuses: the session is closed
    c = tap.counters
    assert c.consistent()
    assert c.relayed_messages == len(stream) and c.relayed_bytes == sum(map(len, stream))


@FUZZ
@given(st.lists(messages, max_size=8), messages)
def test_the_master_gets_well_formed_answers_and_its_writes_go_nowhere(learned, request):
    view = SwitchView()
    for data in learned:
        view.learn(Framer().feed(data)[0])
    master = Framer().feed(request)[0]
    result = answer(view, master)
    replies = b"".join(result.replies) + (unavailable(view, master) if result.unanswered else b"")
    framed = Framer().feed(replies)
    assert b"".join(m.data for m in framed) == replies  # whole OpenFlow messages, nothing else
    assert all(m.xid == master.xid for m in framed)
    if master.type in SWALLOWED:
        assert result.swallowed and not result.replies


def controller_view(passed: bytes) -> bool:
    """What a controller in its handshake makes of the bytes the gate let
    through: True when every FEATURES_REPLY it took before its handshake
    ended claimed the bound id."""
    proven = False
    for m in _whole_messages(passed):
        if m.type == OFPT.FEATURES_REPLY:
            if int.from_bytes(m.data[8:16], "big") != BOUND:
                return False
            proven = True
        elif proven and m.type == OFPT.MULTIPART_REPLY and m.data[8:10] == b"\x00\x0d" and not m.data[11] & 1:
            return True  # main state: a FEATURES_REPLY is ignored from here on
    return True


def _whole_messages(data: bytes) -> list[Message]:
    framer, got = Framer(), []
    try:
        for offset in range(0, len(data), 1 << 12):
            got += framer.feed(data[offset : offset + (1 << 12)])
    except FramingError:
        pass
    return got


BINDINGS_FILE = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)  # noqa: SIM115 (kept for the module)
json.dump({ADDRESS: [hex(BOUND)]}, BINDINGS_FILE)
BINDINGS_FILE.close()


@FUZZ
@given(st.lists(handshake_parts, max_size=12), cuts)
def test_the_gate_never_lets_a_claim_of_another_id_reach_the_controller(parts, where):
    hello = message(4, OFPT.HELLO, 1, b"")
    gate = Gate(Bindings(BINDINGS_FILE.name), ADDRESS)
    passed, refused = b"", False
    for piece in chunks(hello + b"".join(parts), where):
        if gate.feed(piece):
            assert not refused, "a refused session let bytes through again"
            passed += piece
        else:
            refused = True
    assert controller_view(passed)


@FUZZ
@given(st.binary(min_size=1, max_size=3000), st.lists(st.integers(1, 400), min_size=1, max_size=40), st.randoms())
def test_the_capture_delivers_the_stream_whatever_the_order_and_duplicates(data, sizes, rng):
    pieces, offset = [], 0
    for size in sizes * (len(data) // sum(sizes) + 1):
        if offset >= len(data):
            break
        pieces.append((offset, data[offset : offset + size]))
        offset += size
    segments = pieces + rng.sample(pieces, k=min(len(pieces), 5))  # some sent twice
    starts = {start for start, _ in pieces}
    for _ in range(5):  # retransmissions that overlap several pieces (a receiver keeps one segment per start)
        start = rng.randrange(len(data))
        if start not in starts:
            segments.append((start, data[start : start + rng.randint(1, 600)]))
    rng.shuffle(segments)
    delivered = bytearray()
    isn = rng.randrange(1 << 32)
    stream = Stream(delivered.extend, lambda missing: None, lambda: 4)
    stream.syn(isn)
    stats = CaptureStats()
    for start, payload in segments:
        stream.segment((isn + 1 + start) % (1 << 32), payload, 0.0, stats)
    assert bytes(delivered) == data
    assert stream.leftover() == 0
