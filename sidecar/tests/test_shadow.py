import struct

import pytest
from sdn_ha_mirror.openflow import OFPT, Framer, pack
from sdn_ha_mirror.shadow import OFPMP_PORT_DESC, SwitchView, answer, with_xid


def message(data):
    (m,) = Framer().feed(data)
    return m


@pytest.fixture
def view():
    v = SwitchView()
    for data in (
        pack(4, OFPT.HELLO, 1),
        pack(4, OFPT.FEATURES_REPLY, 7, bytes.fromhex("0000000000000001") + bytes(16)),
        pack(4, OFPT.MULTIPART_REPLY, 8, struct.pack("!HH4x", OFPMP_PORT_DESC, 0) + bytes(64)),
        pack(4, OFPT.GET_CONFIG_REPLY, 9, struct.pack("!HH", 0, 0xFFE5)),
    ):
        v.learn(message(data))
    return v


def test_the_view_is_ready_after_features_and_port_desc():
    v = SwitchView()
    assert not v.ready
    v.learn(message(pack(4, OFPT.HELLO, 1)))
    v.learn(message(pack(4, OFPT.FEATURES_REPLY, 2, bytes(24))))
    assert not v.ready
    v.learn(message(pack(4, OFPT.MULTIPART_REPLY, 3, struct.pack("!HH4x", OFPMP_PORT_DESC, 0))))
    assert v.ready


def test_cached_replies_carry_the_masters_xid(view):
    reply = answer(view, message(pack(4, OFPT.FEATURES_REQUEST, 0xABCD))).replies[0]
    assert reply == with_xid(view.features, 0xABCD)
    port_desc = answer(view, message(pack(4, OFPT.MULTIPART_REQUEST, 77, struct.pack("!HH4x", 13, 0))))
    assert message(port_desc.replies[0]).xid == 77
    config = answer(view, message(pack(4, OFPT.GET_CONFIG_REQUEST, 5))).replies[0]
    assert message(config).type == OFPT.GET_CONFIG_REPLY and message(config).xid == 5


def test_keepalives_and_handshake_are_answered_locally(view):
    (hello,) = answer(view, message(pack(6, OFPT.HELLO, 3))).replies
    assert message(hello).version == 4  # the version the switch negotiated
    (echo,) = answer(view, message(pack(4, OFPT.ECHO_REQUEST, 11, b"payload"))).replies
    assert (message(echo).type, message(echo).xid, message(echo).body) == (OFPT.ECHO_REPLY, 11, b"payload")
    (barrier,) = answer(view, message(pack(4, OFPT.BARRIER_REQUEST, 12))).replies
    assert message(barrier).type == OFPT.BARRIER_REPLY


def test_role_requests_are_granted_as_asked(view):
    body = struct.pack("!I4xQ", 2, 42)  # OFPCR_ROLE_MASTER, generation 42
    (reply,) = answer(view, message(pack(4, OFPT.ROLE_REQUEST, 13, body))).replies
    assert message(reply).type == OFPT.ROLE_REPLY and message(reply).body == body


@pytest.mark.parametrize("kind", [OFPT.FLOW_MOD, OFPT.PACKET_OUT, OFPT.GROUP_MOD, OFPT.SET_CONFIG, OFPT.METER_MOD])
def test_state_changes_are_swallowed(view, kind):
    result = answer(view, message(pack(4, kind, 1, bytes(40))))
    assert result.swallowed and result.replies == []


def test_an_uncached_request_is_left_to_the_caller(view):
    result = answer(view, message(pack(4, OFPT.MULTIPART_REQUEST, 1, struct.pack("!HH4x", 1, 0))))
    assert result.unanswered and result.replies == []


def test_a_view_adopted_from_the_peer_keeps_what_the_stream_showed(view):
    from sdn_ha_mirror.master import Settings
    from sdn_ha_mirror.tap import Tap

    tap = Tap(Settings(), "198.18.1.10:40000")
    mine = message(pack(4, OFPT.GET_CONFIG_REPLY, 3, struct.pack("!HH", 1, 128)))
    tap.view.learn(mine)
    tap.adopt(view)
    assert tap.view.ready and tap.view.config == mine.data and tap.view.features == view.features


def test_the_view_takes_the_negotiated_version_from_the_first_message_after_hello():
    v = SwitchView()
    v.learn(message(pack(6, OFPT.HELLO, 1)))  # the switch offers up to 1.5
    assert v.version == 6
    v.learn(message(pack(4, OFPT.FEATURES_REPLY, 2, bytes(24))))  # the session runs 1.3
    assert v.version == 4
