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


BACKUP = "198.18.3.22"


def packet(
    seq: int, payload: bytes = b"", flags: int = 0x18, source: str = SWITCH, ack: int = 7, reply: bool = False
) -> bytes:
    """A switch's segment to the VIP; with `reply`, the backup's to the switch."""
    ports = (6653, 40000) if reply else (40000, 6653)
    tcp = struct.pack("!HHIIBBHHH", *ports, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 0xFFFF, 0, 0)
    total = 20 + len(tcp) + len(payload)
    addresses = (BACKUP, source) if reply else (source, VIP)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0, 64, 6, 0, *map(socket.inet_aton, addresses))
    return ip + tcp + payload


def acknowledged(streams, through: int) -> str:
    """The backup's answer to the switch, acknowledging `through` bytes of its stream."""
    return streams.answer(parse(packet(99, flags=0x10, reply=True, ack=ISN + 1 + through)))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def streams(tmp_path):
    path = tmp_path / "bindings.json"
    path.write_text(json.dumps({SWITCH: ["0x1"], IMPOSTOR: ["0x1000"]}))
    return Streams(Bindings(str(path)), adopt_until=0.0, vip=VIP, clock=Clock())


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


def test_a_bound_switch_is_proven_once_the_controller_acknowledges_its_handshake(streams):
    chunks = [pack(4, OFPT.HELLO, 1), features(0x1), port_desc(more=True), port_desc()]
    assert feed(streams, chunks) == [ACCEPT] * 4
    end = sum(map(len, chunks))
    assert acknowledged(streams, end - 1) == ACCEPT  # not all of it yet
    assert acknowledged(streams, end) == PROVE
    assert streams.counts.proven == 1 and not streams.flows


def test_a_handshake_the_controller_threw_away_cannot_be_replaced(streams):
    """The controller's TCP may drop a segment the gate let through (a stale
    timestamp, an ACK of data it never sent): until it acknowledges the
    handshake, the bytes sent again must be the same."""
    hello, last = pack(4, OFPT.HELLO, 1), port_desc()
    assert feed(streams, [hello, features(0x1), last]) == [ACCEPT] * 3
    assert acknowledged(streams, len(hello)) == ACCEPT
    forged = features(0x1000)  # the claim, where the controller has nothing yet
    assert streams.answer(parse(packet(ISN + 1 + len(hello), forged))) == REFUSE


def test_a_claim_from_another_switch_address_is_refused_at_its_last_byte(streams):
    claim = features(0x1)
    answers = feed(streams, [pack(4, OFPT.HELLO, 1), claim[:12], claim[12:]], source=IMPOSTOR)
    assert answers == [ACCEPT, ACCEPT, REFUSE]  # the half that proves nothing may go on
    assert streams.counts.refused == 1 and streams.bindings.refused == 1
    # Packets of it that were queued already get the same answer.
    assert streams.answer(parse(packet(ISN + 99, b"x" * 8, source=IMPOSTOR))) == REFUSE
    # but a reset goes on: it closes the receiver's side of the refused session.
    assert streams.answer(parse(packet(ISN + 99, flags=0x14, source=IMPOSTOR))) == ACCEPT


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
    assert streams.answer(parse(packet(ISN + 1 + len(hello + claim), port_desc()))) == ACCEPT
    assert acknowledged(streams, len(hello + claim + port_desc())) == PROVE


def test_a_stream_the_gate_did_not_see_begin(streams):
    late = parse(packet(ISN + 500, pack(4, OFPT.ECHO_REQUEST, 3)))
    assert streams.answer(parse(packet(ISN + 500, b"", flags=0x10))) == ACCEPT  # a bare ACK carries nothing
    assert streams.answer(late) == REFUSE
    young = Streams(streams.bindings, adopt_until=streams.clock() + 15, vip=VIP, clock=streams.clock)
    assert young.answer(late) == PROVE and young.counts.adopted == 1 and young.counts.proven == 0


def test_a_switch_that_never_says_who_it_is_is_refused(streams):
    echo = pack(4, OFPT.ECHO_REQUEST, 1, bytes(1000))
    answers = feed(streams, [pack(4, OFPT.HELLO, 1)] + [echo] * (GATE_LIMIT // len(echo) + 2))
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


def test_the_stream_must_begin_with_a_hello(streams):
    """os-ken ignores what comes before a HELLO, so a handshake played
    before it would end the check and let the real claim through after."""
    assert feed(streams, [features(0x1) + port_desc()]) == [REFUSE]


def test_a_message_of_another_version_is_refused(streams):
    """os-ken parses each message by its own version: an OpenFlow 1.0
    FEATURES_REPLY in a 1.3 handshake would reach it, and must not end the check."""
    old = pack(1, OFPT.FEATURES_REPLY, 100, (0x1).to_bytes(8, "big") + bytes(16))
    assert feed(streams, [pack(4, OFPT.HELLO, 1), old]) == [ACCEPT, REFUSE]


def test_a_second_syn_after_data_is_refused(streams):
    """conntrack lets a SYN through on an established connection: it must
    not start the gate's copy of the stream over."""
    hello = pack(4, OFPT.HELLO, 1)
    assert feed(streams, [hello]) == [ACCEPT]
    assert streams.answer(parse(packet(ISN, flags=0x02))) == REFUSE
    # Before any data, a SYN sent again is only that.
    assert streams.answer(parse(packet(ISN + 7, flags=0x02, source=IMPOSTOR))) == ACCEPT
    assert streams.answer(parse(packet(ISN + 7, flags=0x02, source=IMPOSTOR))) == ACCEPT


def test_urgent_data_is_refused_and_a_resets_payload_is_not_read(streams):
    """The controller's TCP takes an urgent byte out of the stream, and drops
    a reset's payload: either would make its stream differ from the gate's."""
    hello = pack(4, OFPT.HELLO, 1)
    assert feed(streams, [hello]) == [ACCEPT]
    claim = features(0x1000)
    assert streams.answer(parse(packet(ISN + 1 + len(hello), claim, flags=0x14))) == ACCEPT  # RST: not read
    assert streams.flows[parse(packet(ISN, flags=0x02)).key].passed == bytearray(hello)
    assert streams.answer(parse(packet(ISN + 1 + len(hello), claim, flags=0x38))) == REFUSE  # URG
