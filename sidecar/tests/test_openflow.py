import random

import pytest
from sdn_ha_mirror.accounting import MirrorQueue
from sdn_ha_mirror.openflow import OFPT, Framer, FramingError, Message, Route, multipart_type, pack, route

SWITCH_STREAM = [
    pack(4, OFPT.HELLO, 1),
    pack(4, OFPT.FEATURES_REPLY, 2, bytes(24)),
    pack(4, OFPT.MULTIPART_REPLY, 3, b"\x00\x0d" + bytes(70)),
    pack(4, OFPT.PACKET_IN, 0, bytes(120)),
    pack(4, OFPT.PORT_STATUS, 0, bytes(72)),
    pack(4, OFPT.ECHO_REPLY, 4, b"ping"),
    pack(4, OFPT.ERROR, 5, bytes(4)),
    pack(4, OFPT.ERROR, 0, bytes(4)),
    pack(4, OFPT.FLOW_REMOVED, 0, bytes(48)),
]


def split_randomly(data: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, rng.randint(0, 40))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def test_messages_are_whole_whatever_the_segment_boundaries():
    stream = b"".join(SWITCH_STREAM)
    rng = random.Random(7)
    for _ in range(200):
        framer = Framer()
        got = [m.data for chunk in split_randomly(stream, rng) for m in framer.feed(chunk)]
        assert got == SWITCH_STREAM
        assert framer.pending == 0


def test_an_incomplete_message_waits_for_its_tail():
    framer = Framer()
    message = pack(4, OFPT.PACKET_IN, 9, bytes(100))
    assert list(framer.feed(message[:50])) == []
    assert framer.pending == 50
    (whole,) = framer.feed(message[50:])
    assert (whole.type, whole.xid, whole.data) == (OFPT.PACKET_IN, 9, message)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (bytes([4, 10, 0, 4, 0, 0, 0, 1]), "shorter than the header"),
        (bytes([0, 0, 0, 8, 0, 0, 0, 1]), "version 0x0 is unknown"),
        (bytes([0x47, 0x45, 0x54, 0x20, 0x2F, 0x20, 0x48, 0x54]), "is unknown"),  # "GET / HT"
    ],
)
def test_bytes_that_are_not_openflow_close_the_session(data, problem):
    with pytest.raises(FramingError, match=problem):
        list(Framer().feed(data))


def test_malformed_input_only_ever_raises_framing_errors():
    rng = random.Random(11)
    for _ in range(2000):
        framer = Framer()
        try:
            for _ in range(rng.randint(1, 5)):
                list(framer.feed(rng.randbytes(rng.randint(0, 64))))
        except FramingError:
            pass


def test_switch_messages_are_routed_by_the_contract():
    pending = {5}
    routes = [route(Message(4, m[1], int.from_bytes(m[4:8], "big"), m), pending) for m in SWITCH_STREAM]
    assert routes == [
        Route.FILTER,  # HELLO: the primary session's handshake
        Route.CACHE,  # FEATURES_REPLY
        Route.CACHE,  # MULTIPART_REPLY
        Route.MIRROR,  # PACKET_IN
        Route.MIRROR,  # PORT_STATUS
        Route.CACHE,  # ECHO_REPLY
        Route.CACHE,  # ERROR answering the backup's xid 5
        Route.MIRROR,  # asynchronous ERROR
        Route.MIRROR,  # FLOW_REMOVED
    ]


def test_multipart_type_is_read_from_the_body():
    (reply,) = Framer().feed(SWITCH_STREAM[2])
    assert multipart_type(reply) == 13  # OFPMP_PORT_DESC
    (hello,) = Framer().feed(SWITCH_STREAM[0])
    assert multipart_type(hello) is None


def test_a_full_queue_drops_whole_messages_and_the_identity_holds():
    queue = MirrorQueue(limit=300)
    rng = random.Random(3)
    for _ in range(500):
        message = Message(4, OFPT.PACKET_IN, 0, pack(4, OFPT.PACKET_IN, 0, bytes(rng.randint(0, 120))))
        queue.account(message, rng.choice(list(Route)))
        assert queue.queued_bytes <= 300
        assert queue.counters.consistent()
        if rng.random() < 0.2:
            out = queue.take(max_bytes=rng.randint(1, 400))
            assert list(Framer().feed(out)) or out == b""
    c = queue.counters
    assert c.dropped_messages > 0 and c.mirrored_messages > 0 and c.filtered_messages > 0


def test_take_returns_whole_messages_in_order():
    queue = MirrorQueue(limit=10_000)
    messages = [pack(4, OFPT.PACKET_IN, n, bytes(n)) for n in range(10)]
    for data in messages:
        queue.account(Message(4, OFPT.PACKET_IN, 0, data), Route.MIRROR)
    first = queue.take(max_bytes=40)
    rest = queue.take()
    assert first + rest == b"".join(messages)
    assert [m.data for m in Framer().feed(first)] == messages[: len(list(Framer().feed(first)))]
    assert len(queue) == 0 and queue.queued_bytes == 0
