"""The identity gate of NAT mode: its answer for each queued packet, and
its netlink messages."""

from __future__ import annotations

import json
import socket
import struct

import pytest
from sdn_ha_mirror.gate import (
    ACCEPT,
    DROP,
    NF_ACCEPT,
    NFQA_MARK,
    NFQA_VERDICT_HDR,
    PROVE,
    REFUSE,
    Streams,
    attributes,
    messages,
    parse,
    verdict_message,
)
from sdn_ha_mirror.identity import GATE_LIMIT, Bindings
from sdn_ha_mirror.openflow import OFPT, pack

SWITCH, IMPOSTOR, VIP = "198.18.1.10", "198.18.1.100", "198.18.2.100"
ISN = 0xFFFFFF00  # the stream's numbers wrap past 2**32 on the way


def packet(seq: int, payload: bytes = b"", flags: int = 0x18, source: str = SWITCH, ack: int = 7) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", 40000, 6653, seq & 0xFFFFFFFF, ack, 5 << 4, flags, 0xFFFF, 0, 0)
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0, 64, 6, 0, socket.inet_aton(source), socket.inet_aton(VIP))
    return ip + tcp + payload


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def streams(tmp_path):
    path = tmp_path / "bindings.json"
    path.write_text(json.dumps({SWITCH: ["0x1"], IMPOSTOR: ["0x1000"]}))
    return Streams(Bindings(str(path)), adopt_until=0.0, clock=Clock())


def features(dpid: int) -> bytes:
    return pack(4, OFPT.FEATURES_REPLY, 100, dpid.to_bytes(8, "big") + bytes(16))


def port_desc(more: bool = False) -> bytes:
    return pack(4, OFPT.MULTIPART_REPLY, 101, struct.pack("!HH4x", 13, int(more)) + bytes(64))


def feed(streams: Streams, chunks: list[bytes], source: str = SWITCH) -> list[str]:
    """A SYN, then each chunk in order; the answer for each chunk."""
    assert streams.answer(parse(packet(ISN, flags=0x02, source=source))) == ACCEPT
    seq, answers = ISN + 1, []
    for chunk in chunks:
        answers.append(streams.answer(parse(packet(seq, chunk, source=source))))
        seq += len(chunk)
    return answers


def test_a_bound_switch_is_proven_when_its_handshake_ends(streams):
    answers = feed(streams, [pack(4, OFPT.HELLO, 1), features(0x1), port_desc(more=True), port_desc()])
    assert answers == [ACCEPT, ACCEPT, ACCEPT, PROVE]
    assert streams.counts.proven == 1 and not streams.flows


def test_a_claim_from_another_switch_address_is_refused_at_its_last_byte(streams):
    claim = features(0x1)
    answers = feed(streams, [pack(4, OFPT.HELLO, 1), claim[:12], claim[12:]], source=IMPOSTOR)
    assert answers == [ACCEPT, ACCEPT, REFUSE]  # the half that proves nothing may go on
    assert streams.counts.refused == 1 and streams.bindings.refused == 1
    # Packets of it that were queued already get the same answer.
    assert streams.answer(parse(packet(ISN + 99, b"x" * 8, source=IMPOSTOR))) == REFUSE


def test_a_switch_that_proved_its_id_may_not_claim_another(streams):
    streams.bindings.table[SWITCH] = frozenset({1, 2})
    answers = feed(streams, [features(0x1) + features(0x2)])
    assert answers == [REFUSE]


def test_bytes_sent_again_must_be_the_same(streams):
    hello = pack(4, OFPT.HELLO, 1)
    assert feed(streams, [hello]) == [ACCEPT]
    # The same segment again (a retransmission): nothing new, accepted.
    assert streams.answer(parse(packet(ISN + 1, hello))) == ACCEPT
    # Overlapping what passed with other bytes: the controller's TCP kept the
    # first copy, so this is not the stream the gate checked.
    forged = pack(4, OFPT.ECHO_REQUEST, 1)
    assert streams.answer(parse(packet(ISN + 1, forged))) == REFUSE


def test_a_gap_is_dropped_and_the_stream_goes_on(streams):
    hello, claim = pack(4, OFPT.HELLO, 1), features(0x1)
    assert feed(streams, [hello]) == [ACCEPT]
    assert streams.answer(parse(packet(ISN + 1 + len(hello) + 4, claim[4:]))) == DROP
    assert streams.counts.gaps == 1
    # The switch sends it all again, overlapping what passed.
    assert streams.answer(parse(packet(ISN + 1, hello + claim))) == ACCEPT
    assert streams.answer(parse(packet(ISN + 1 + len(hello + claim), port_desc()))) == PROVE


def test_a_stream_the_gate_did_not_see_begin(streams):
    late = parse(packet(ISN + 500, pack(4, OFPT.ECHO_REQUEST, 3)))
    assert streams.answer(parse(packet(ISN + 500, b"", flags=0x10))) == ACCEPT  # a bare ACK carries nothing
    assert streams.answer(late) == REFUSE
    young = Streams(streams.bindings, adopt_until=streams.clock() + 15, clock=streams.clock)
    assert young.answer(late) == PROVE and young.counts.adopted == 1 and young.counts.proven == 0


def test_a_switch_that_never_says_who_it_is_is_refused(streams):
    echo = pack(4, OFPT.ECHO_REQUEST, 1, bytes(1000))
    answers = feed(streams, [echo] * (GATE_LIMIT // len(echo) + 2))
    assert answers[-1] == REFUSE and answers[0] == ACCEPT


def test_a_handshake_that_takes_too_long_is_refused(streams):
    assert feed(streams, [pack(4, OFPT.HELLO, 1)]) == [ACCEPT]
    streams.clock.now += 31
    assert streams.answer(parse(packet(ISN + 9, features(0x1)))) == REFUSE


def test_bytes_that_are_not_openflow_are_refused(streams):
    assert feed(streams, [b"GET / HTTP/1.0\r\n\r\n"]) == [REFUSE]


def test_data_on_a_syn_is_dropped(streams):
    assert streams.answer(parse(packet(ISN, features(0x1), flags=0x02))) == DROP


def test_verdict_message_layout():
    data = verdict_message(7010, 42, NF_ACCEPT, 0x20000000)
    [(kind, flags, body)] = list(messages(data))
    assert kind == (3 << 8) | 1 and flags == 1
    assert body[:4] == struct.pack("!BBH", 0, 0, 7010)
    attrs = attributes(body[4:])
    assert struct.unpack("!II", attrs[NFQA_VERDICT_HDR]) == (NF_ACCEPT, 42)
    assert struct.unpack("!I", attrs[NFQA_MARK]) == (0x20000000,)


def test_parse_reads_the_segment():
    segment = parse(packet(ISN, b"abc", ack=99))
    assert (segment.source, segment.sport, segment.destination, segment.dport) == (SWITCH, 40000, VIP, 6653)
    assert segment.seq == ISN and segment.ack == 99 and segment.payload == b"abc"
    assert parse(b"\x45" + bytes(10)) is None
