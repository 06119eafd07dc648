import json

from ansible_collections.sdn_ha.control_plane.plugins.plugin_utils.ovs import ovs_records
from ansible_collections.sdn_ha.control_plane.plugins.plugin_utils.status import (
    datapaths_up,
    mirror_counters,
    prometheus_value,
    status_lines,
    status_view,
)

OVS = json.dumps(
    {
        "headings": ["target", "is_connected", "role", "status"],
        "data": [["tcp:198.18.2.100:6653", True, "other", ["map", [["sec_since_connect", "3"], ["state", "ACTIVE"]]]]],
    }
)

METRICS = """# HELP dp_status status of datapaths
dp_status{dp_id="0x1",dp_name="sw1"} 1.0
dp_status{dp_id="0x2",dp_name="sw2"} 0.0
"""


def test_ovs_records_flatten_maps_and_sets():
    assert ovs_records(OVS) == [
        {
            "target": "tcp:198.18.2.100:6653",
            "is_connected": True,
            "role": "other",
            "status": {"sec_since_connect": "3", "state": "ACTIVE"},
        }
    ]
    assert ovs_records({"headings": ["ports"], "data": [[["set", [1, 2]]]]}) == [{"ports": [1, 2]}]


def test_mirror_counters_are_read_from_the_metrics_page():
    text = (
        "# TYPE x counter\nsdn_ha_mirror_relayed_messages_total 105\nsdn_ha_mirror_sessions 1\n"
        "sdn_ha_mirror_sessions_opened_total 3\n"
    )
    assert mirror_counters(text) == {"relayed_messages": 105, "sessions": 1, "sessions_opened": 3}


def test_only_datapaths_with_status_one_are_up():
    assert datapaths_up(METRICS) == ["sw1"]
    assert datapaths_up("") == []


def test_the_view_names_the_vip_holder_and_each_piece():
    hostvars = {
        "lb1": {
            "ansible_facts": {"all_ipv4_addresses": ["198.18.2.11", "198.18.2.100"]},
            "haproxy_status": {
                "servers": [
                    {
                        "server": "ctl2",
                        "address": "198.18.3.22:6653",
                        "status": "UP",
                        "check_status": "L7OK",
                        "current_sessions": 1,
                        "total_sessions": 1,
                    }
                ],
                "sessions": [
                    {"source": "198.18.1.10", "source_port": 40000, "server": "ctl2"},
                    {"source": "198.18.1.100", "source_port": 40001, "server": "ctl2"},
                    {"source": "127.0.0.1", "source_port": 34922, "server": "ctl2"},
                ],
            },
        },
        "lb2": {"ansible_facts": {"all_ipv4_addresses": ["198.18.2.12"]}, "keepalived_state": {"stdout": "BACKUP\n"}},
        "ctl1": {
            "sdn_ha_controller_role": "master",
            "controller_service_status": {"status": {"ActiveState": "active"}},
            "controller_metrics_status": {"content": ""},
        },
        "ctl2": {
            "sdn_ha_controller_role": "backup",
            "controller_service_status": {"status": {"ActiveState": "active"}},
            "controller_metrics_status": {"content": METRICS},
        },
        "sw1": {"switch_status": {"stdout": OVS}, "sdn_ha_addresses": {"switch": "198.18.1.10/24"}},
    }
    groups = {"load_balancers": ["lb1", "lb2"], "controllers": ["ctl1", "ctl2"], "switches": ["sw1"]}
    view = status_view(hostvars, groups, "198.18.2.100")
    # A switch of the inventory by its name, an emulated one by its address,
    # one behind the relay (TLS) by the relay's port.
    assert view["carriers"] == {"lb1": {"sw1": "ctl2", "198.18.1.100": "ctl2", "relay:34922": "ctl2"}, "lb2": {}}
    assert view["vip_holders"] == ["lb1"]
    assert view["vrrp"] == {"lb1": "unreachable", "lb2": "BACKUP"}
    assert view["controllers"]["ctl2"]["datapaths_up"] == ["sw1"]
    assert view["controllers"]["ctl1"]["datapaths_up"] == []
    assert view["switches"]["sw1"][0]["is_connected"] is True
    lines = status_lines(view)
    assert lines[0] == "front VIP 198.18.2.100 held by: lb1 (proxy mode)"
    assert "haproxy@lb2: no stats (HAProxy down or host unreachable)" in lines
    assert "haproxy@lb1: carries 198.18.1.100 on ctl2, relay:34922 on ctl2, sw1 on ctl2" in lines
    assert lines[-1] == "switch sw1 -> tcp:198.18.2.100:6653: connected=True role=other state=ACTIVE"


def test_an_unreachable_host_is_reported_not_fatal():
    hostvars = {"lb1": {}, "ctl1": {"controller_service_status": {"unreachable": True}}, "sw1": {}}
    groups = {"load_balancers": ["lb1"], "controllers": ["ctl1"], "switches": ["sw1"]}
    view = status_view(hostvars, groups, "198.18.2.100")
    assert view["vip_holders"] == []
    assert view["controllers"]["ctl1"]["service"] == "unreachable"
    assert "front VIP 198.18.2.100 held by: NOBODY (proxy mode)" in status_lines(view)


def test_prometheus_values_are_summed_over_matching_labels():
    text = (
        "# TYPE of_packet_ins_total counter\n"
        'of_packet_ins_total{dp_id="0x1",dp_name="sw1"} 12.0\n'
        'of_packet_ins_total{dp_id="0x2",dp_name="sw2"} 3.0\n'
        'of_packet_ins_created{dp_id="0x1",dp_name="sw1"} 1.7e+09\n'
        "sdn_ha_mirror_sessions 1\n"
    )
    assert prometheus_value(text, "of_packet_ins_total") == 15.0
    assert prometheus_value(text, "of_packet_ins_total", dp_name="sw1") == 12.0
    assert prometheus_value(text, "of_packet_ins_total", dp_name="sw9") == 0.0
    assert prometheus_value(text, "sdn_ha_mirror_sessions") == 1.0
    assert prometheus_value("", "anything") == 0.0


NAT_TABLE = """198.18.1.10 198.18.3.22:6653
198.18.1.100 198.18.3.23:6653
198.18.1.101 198.18.3.22:6653
---
tcp      6 431999 ESTABLISHED src=198.18.1.10 dst=198.18.2.100 sport=40612 dport=6653 src=198.18.3.22 \
dst=198.18.1.10 sport=6653 dport=40612 [ASSURED] mark=0 use=1
tcp      6 431999 ESTABLISHED src=198.18.1.100 dst=198.18.2.100 sport=40001 dport=6653 src=198.18.3.23 \
dst=198.18.1.100 sport=6653 dport=40001 [ASSURED] mark=0 use=1
""".replace("\\\n", "")


def test_nat_mode_shows_the_map_and_each_backups_sessions_and_haproxy_off_the_path():
    hostvars = {
        "lb1": {
            "ansible_facts": {"all_ipv4_addresses": ["198.18.2.11", "198.18.2.100"]},
            "nat_status": {"stdout": NAT_TABLE},
            "keepalived_state": {"stdout": "MASTER\n"},
        },
        "ctl2": {"sdn_ha_addresses": {"control": "198.18.3.22/24"}},
        "ctl3": {"sdn_ha_addresses": {"control": "198.18.3.23/24"}},
    }
    groups = {"load_balancers": ["lb1"], "controllers": ["ctl2", "ctl3"]}
    view = status_view(hostvars, groups, "198.18.2.100", "nat")
    assert view["nat"] == {"lb1": {"assigned": {"ctl2": 2, "ctl3": 1}, "sessions": {"ctl2": 1, "ctl3": 1}}}
    lines = status_lines(view)
    assert lines[0] == "front VIP 198.18.2.100 held by: lb1 (nat mode)"
    assert "nat@lb1: switches mapped to ctl2 2, ctl3 1; sessions in the connection table: ctl2 1, ctl3 1" in lines
    assert "haproxy@lb1: off the path (nat mode)" in lines


def test_a_capturing_mirror_shows_its_capture_counters():
    view = {
        "front_vip": "198.18.2.100",
        "vip_holders": ["lb1"],
        "vrrp": {},
        "mode": "nat",
        "mirror": {
            "lb1": mirror_counters(
                "sdn_ha_mirror_relayed_messages_total 7\nsdn_ha_mirror_capture_active 1\n"
                "sdn_ha_mirror_capture_packets_total 40\nsdn_ha_mirror_capture_kernel_drops_total 2\n"
                "sdn_ha_mirror_unseen_bytes_total 88\nsdn_ha_mirror_sync_received_total 5\n"
                "sdn_ha_mirror_sync_pushed_total 0\nsdn_ha_mirror_sync_refused_total 1\n"
                "sdn_ha_mirror_sync_views_known 4\n"
            )
        },
        "haproxy": {},
        "controllers": {},
        "switches": {},
    }
    lines = status_lines(view)
    assert any(line.startswith("mirror@lb1: 0 session(s)") and "seen whole 7 =" in line for line in lines)
    assert "capture@lb1: on (holds the VIP); packets 40, dropped by the kernel 2, bytes never seen 88" in lines
    assert "view sync@lb1: peer's views held 4, received 5, sent 0, connections refused 1" in lines


def test_the_guards_counters_are_shown_and_a_missing_table_is_flagged():
    listed = json.dumps(
        {
            "nftables": [
                {"metainfo": {"json_schema_version": 1}},
                {"counter": {"family": "ip", "name": "openflow_refused", "table": "sdn_ha_guard", "packets": 7}},
                {"counter": {"family": "ip", "name": "vrrp_refused", "table": "sdn_ha_guard", "packets": 2}},
            ]
        }
    )
    hostvars = {
        "lb1": {"keepalived_guard_status": {"stdout": listed, "rc": 0}},
        # nft's answer when the table does not exist: an error, nothing on stdout
        "lb2": {"keepalived_guard_status": {"stdout": "", "rc": 1}},
    }
    view = status_view(hostvars, {"load_balancers": ["lb1", "lb2"]}, "198.18.2.100")
    assert view["guard"] == {"lb1": {"openflow_refused": 7, "vrrp_refused": 2}, "lb2": None}
    lines = status_lines(view)
    assert (
        "guard@lb1: refused 7 packet(s) to the VIP's OpenFlow ports from non-switches, 2 VRRP advert(s) from non-peers"
        in lines
    )
    assert "guard@lb2: NOT LOADED (anyone may reach the VIP's OpenFlow ports and send VRRP)" in lines


def test_the_relays_identity_check_is_shown():
    page = "sdn_ha_mirror_sessions 1\nsdn_ha_mirror_identity_refused_total 3\nsdn_ha_mirror_identity_addresses 65\n"
    view = status_view({"lb1": {"mirror_status": {"content": page}}}, {"load_balancers": ["lb1"]}, "198.18.2.100")
    assert (
        "identity@lb1: 3 session(s) refused for claiming a datapath id not bound to their address (65 addresses bound)"
        in status_lines(view)
    )


def test_the_nat_identity_gates_counters_are_shown():
    listed = json.dumps(
        {
            "nftables": [
                {"counter": {"family": "ip", "name": "proven", "table": "sdn_ha_identity", "packets": 64}},
                {"counter": {"family": "ip", "name": "refused", "table": "sdn_ha_identity", "packets": 2}},
            ]
        }
    )
    hostvars = {"lb1": {"mirror_gate_status": {"stdout": listed, "rc": 0}}, "lb2": {"mirror_gate_status": {"rc": 1}}}
    view = status_view(hostvars, {"load_balancers": ["lb1", "lb2"]}, "198.18.2.100", "nat")
    lines = status_lines(view)
    assert (
        "identity@lb1: gate proved 64 session(s), refused 2 (a datapath id not bound to their address,"
        " or no OpenFlow handshake)" in lines
    )
    assert "identity@lb2: gate table NOT LOADED (any switch address may claim any datapath id)" in lines
    # Proxy mode reads no such table: no line.
    view = status_view({"lb1": {"mirror_gate_status": {"skipped": True}}}, {"load_balancers": ["lb1"]}, "198.18.2.100")
    assert not [line for line in status_lines(view) if line.startswith("identity@")]


def _server(name: str, status: str) -> dict:
    return {
        "server": name,
        "address": "198.18.3.22:6653",
        "status": status,
        "check_status": "L4OK",
        "current_sessions": 0,
        "total_sessions": 0,
    }


def test_two_lbs_claiming_the_vips_are_a_split_brain_shown_first():
    hostvars = {
        "lb1": {
            "ansible_facts": {"all_ipv4_addresses": ["198.18.2.11", "198.18.2.100"]},
            "keepalived_state": {"stdout": "MASTER\n"},
        },
        "lb2": {
            "ansible_facts": {"all_ipv4_addresses": ["198.18.2.12", "198.18.2.100"]},
            "keepalived_state": {"stdout": "MASTER\n"},
        },
    }
    view = status_view(hostvars, {"load_balancers": ["lb1", "lb2"]}, "198.18.2.100")
    assert view["split_brain"] == ["lb1", "lb2"]
    assert status_lines(view)[1].startswith("SPLIT BRAIN: lb1, lb2 all claim the VIPs")


def test_one_master_is_no_split_brain_even_while_the_other_is_unreachable():
    hostvars = {
        "lb1": {
            "ansible_facts": {"all_ipv4_addresses": ["198.18.2.11", "198.18.2.100"]},
            "keepalived_state": {"stdout": "MASTER\n"},
        },
        "lb2": {"keepalived_state": {"unreachable": True}},
    }
    view = status_view(hostvars, {"load_balancers": ["lb1", "lb2"]}, "198.18.2.100")
    assert view["split_brain"] == []
    assert not any(line.startswith("SPLIT BRAIN") for line in status_lines(view))


def test_a_master_that_lost_its_vip_and_a_holder_are_still_two_claimants():
    hostvars = {
        "lb1": {"ansible_facts": {"all_ipv4_addresses": ["198.18.2.100"]}, "keepalived_state": {"stdout": "BACKUP"}},
        "lb2": {"ansible_facts": {"all_ipv4_addresses": []}, "keepalived_state": {"stdout": "MASTER"}},
    }
    assert status_view(hostvars, {"load_balancers": ["lb1", "lb2"]}, "198.18.2.100")["split_brain"] == ["lb1", "lb2"]


def test_a_controller_that_one_lb_cannot_reach_is_a_disagreement():
    hostvars = {
        "lb1": {"haproxy_status": {"servers": [_server("ctl2", "DOWN"), _server("ctl3", "UP")]}},
        "lb2": {"haproxy_status": {"servers": [_server("ctl2", "UP 1/2"), _server("ctl3", "UP")]}},
        # An LB that did not answer is not compared.
        "lb3": {},
    }
    view = status_view(hostvars, {"load_balancers": ["lb1", "lb2", "lb3"]}, "198.18.2.100")
    assert view["disagreement"] == {"ctl2": {"lb1": "DOWN", "lb2": "UP"}}
    assert "LBs disagree on ctl2: DOWN on lb1, UP on lb2 (a failover changes which controllers serve)" in status_lines(
        view
    )


def test_nat_maps_that_differ_are_a_disagreement_and_equal_ones_are_not():
    one = "198.18.1.10 198.18.3.22:6653\n198.18.1.11 198.18.3.23:6653\n---\n"
    other = "198.18.1.10 198.18.3.23:6653\n198.18.1.11 198.18.3.23:6653\n---\n"
    names = {"ctl2": {"sdn_ha_addresses": {"control": "198.18.3.22/24"}}}
    names["ctl3"] = {"sdn_ha_addresses": {"control": "198.18.3.23/24"}}
    groups = {"load_balancers": ["lb1", "lb2"], "controllers": ["ctl2", "ctl3"]}
    split = {"lb1": {"nat_status": {"stdout": one}}, "lb2": {"nat_status": {"stdout": other}}, **names}
    assert status_view(split, groups, "198.18.2.100", "nat")["disagreement"] == {
        "ctl2": {"lb1": "mapped", "lb2": "not mapped"}
    }
    same = {"lb1": {"nat_status": {"stdout": one}}, "lb2": {"nat_status": {"stdout": one}}, **names}
    assert status_view(same, groups, "198.18.2.100", "nat")["disagreement"] == {}


def test_the_captures_identity_check_is_shown_as_not_mirrored():
    page = (
        "sdn_ha_mirror_sessions 1\nsdn_ha_mirror_capture_active 1\n"
        "sdn_ha_mirror_identity_refused_total 2\nsdn_ha_mirror_identity_addresses 65\n"
    )
    view = status_view({"lb1": {"mirror_status": {"content": page}}}, {"load_balancers": ["lb1"]}, "198.18.2.100")
    assert (
        "identity@lb1: 2 session(s) not mirrored for claiming a datapath id not bound to their address"
        " (65 addresses bound)" in status_lines(view)
    )
