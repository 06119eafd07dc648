"""The challenge ACK that makes a switch reveal its sequence numbers."""

import socket
import struct
import time

import pytest
from sdn_ha_mirror.reset import challenge, challenge_segment, checksum, parse_resets


def test_the_segment_carries_a_valid_checksum():
    segment = challenge_segment("198.18.2.100", "198.18.1.100", 6653, 40000, seq=7)
    pseudo = socket.inet_aton("198.18.2.100") + socket.inet_aton("198.18.1.100") + struct.pack("!BBH", 0, 6, 20)
    assert checksum(pseudo + segment) == 0
    sport, dport, seq, _, offset, flags = struct.unpack_from("!HHIIBB", segment)
    assert (sport, dport, seq, offset >> 4, flags) == (6653, 40000, 7, 5, 0x10)


def test_the_hooks_reset_lines_are_read_and_the_rest_ignored():
    text = "RESET 198.18.1.100 40000 6653\nsomething else\nRESET 198.18.1.101 x 6653\nRESET 198.18.1.102 40002 6653\n"
    assert parse_resets(text) == [("198.18.1.100", 40000, 6653), ("198.18.1.102", 40002, 6653)]


def test_a_switch_answers_the_challenge_with_an_ack_that_reveals_its_sequence_numbers():
    """On loopback: a live TCP session between 127.0.0.2 (the switch) and
    127.0.0.1 (the VIP); the challenge from the VIP's port draws an ACK from
    the switch's stack."""
    try:
        tap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    except PermissionError:
        pytest.skip("needs CAP_NET_RAW")
    tap.bind(("lo", 0))
    tap.settimeout(0.2)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        vip_port = listener.getsockname()[1]
        switch = socket.create_connection(("127.0.0.1", vip_port), source_address=("127.0.0.2", 0))
        server, _ = listener.accept()
        switch.sendall(b"x" * 10)
        server.recv(10)
        sport = switch.getsockname()[1]
        time.sleep(0.6)  # past the stack's rate limit for such answers
        while True:  # drain what the tap holds
            try:
                tap.recv(65536)
            except TimeoutError:
                break
        assert challenge("127.0.0.1", [("127.0.0.2", sport, vip_port)]) == 1
        answers = []
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and not answers:
            try:
                frame = tap.recv(65536)
            except TimeoutError:
                continue
            ihl = (frame[14] & 0x0F) * 4
            s, d, _, ack, _, flags = struct.unpack_from("!HHIIBB", frame, 14 + ihl)
            if (s, d) == (sport, vip_port) and flags & 0x10 and not flags & 0x04:
                answers.append(ack)
        switch.close()
        server.close()
    tap.close()
    assert answers, "the switch's stack did not answer the challenge"


def test_an_address_is_held_only_when_the_kernel_delivers_it_here():
    from sdn_ha_mirror.local import holds

    assert holds("127.0.0.1")
    assert not holds("198.18.255.254")  # lab space this host does not hold


def test_a_secondary_address_is_held_and_a_route_to_it_is_not(tmp_path):
    from sdn_ha_mirror.local import holds

    trie = tmp_path / "fib_trie"
    trie.write_text(
        "Local:\n  +-- 198.18.2.0/24 2 0 2\n     |-- 198.18.2.0\n        /24 link UNICAST\n"
        "     |-- 198.18.2.11\n        /32 host LOCAL\n     |-- 198.18.2.100\n        /24 link UNICAST\n"
        "        /32 host LOCAL\n     |-- 198.18.2.101\n        /32 link UNICAST\n"
    )
    assert holds("198.18.2.100", str(trie)) and holds("198.18.2.11", str(trie))
    assert not holds("198.18.2.101", str(trie)) and not holds("198.18.2.10", str(trie))
