import copy

import pytest
from ansible_collections.sdn_ha.control_plane.plugins.module_utils.topology import Topology, validate

LAB = {
    "segments": {
        "switch": "198.18.1.0/24",
        "transit": "198.18.2.0/24",
        "control": "198.18.3.0/24",
        "sync": "198.18.4.0/24",
    },
    "front_vip": "198.18.2.100",
    "back_vip": "198.18.3.254",
    "reserved_addresses": ["198.18.1.1", "198.18.2.1", "198.18.3.1", "198.18.4.1"],
    "hosts": {
        "sw1": {
            "groups": ["switches"],
            "addresses": {"switch": "198.18.1.10/24"},
            "routes": [{"to": "default", "via": "198.18.1.2"}],
            "datapath_id": "0x1",
        },
        "rtr1": {
            "groups": ["routers"],
            "addresses": {"switch": "198.18.1.2/24", "transit": "198.18.2.2/24"},
            "routes": [{"to": "198.18.3.0/24", "via": "198.18.2.100"}],
        },
        "lb1": {
            "groups": ["load_balancers"],
            "addresses": {"transit": "198.18.2.11/24", "control": "198.18.3.11/24"},
            "routes": [{"to": "198.18.1.0/24", "via": "198.18.2.2"}],
        },
        "ctl1": {"groups": ["controllers"], "addresses": {"control": "198.18.3.21/24"}, "controller_role": "master"},
        "ctl2": {"groups": ["controllers"], "addresses": {"control": "198.18.3.22/24"}, "controller_role": "backup"},
    },
}


def errors_for(**changes):
    data = copy.deepcopy(LAB)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = data
        for key in parents:
            node = node[key]
        node[leaf] = value
    return validate(Topology(**data))


def test_the_lab_topology_is_valid():
    assert errors_for() == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"hosts__lb1__addresses": {"transit": "198.18.2.11/24", "control": "198.18.2.12/24"}},
            "lb1: sdn_ha_addresses.transit = '198.18.2.11/24' is on the same subnet as sdn_ha_addresses.control",
        ),
        ({"front_vip": "198.18.3.100"}, "all: sdn_ha_front_vip = '198.18.3.100' is outside segment 'transit'"),
        ({"back_vip": "198.18.2.254"}, "all: sdn_ha_back_vip = '198.18.2.254' is outside segment 'control'"),
        ({"back_vip": "198.18.3.255"}, "is the network or broadcast address of 198.18.3.0/24"),
        (
            {"hosts__ctl2__addresses": {"control": "198.18.3.21/24"}},
            "ctl2: sdn_ha_addresses.control = '198.18.3.21/24' is already used by ctl1",
        ),
        (
            {"hosts__ctl2__addresses": {"control": "198.18.3.254/24"}},
            "ctl2: sdn_ha_addresses.control = '198.18.3.254/24' is already used by all (sdn_ha_back_vip)",
        ),
        (
            {"segments__sync": "198.18.3.128/25"},
            "all: sdn_ha_segments.sync = '198.18.3.128/25' overlaps sdn_ha_segments.control",
        ),
        (
            {"hosts__rtr1__routes": [{"to": "198.18.3.0/24", "via": "198.18.3.254"}]},
            "rtr1: sdn_ha_routes[0].via = '198.18.3.254' is not on a directly connected subnet of rtr1",
        ),
        (
            {"hosts__sw1__routes": [{"to": "default", "via": "198.18.1.1"}]},
            "sw1: sdn_ha_routes[0].via = '198.18.1.1' is in sdn_ha_reserved_addresses",
        ),
        (
            {"hosts__ctl2__addresses": {"control": "198.18.3.1/24"}},
            "ctl2: sdn_ha_addresses.control = '198.18.3.1/24' is in sdn_ha_reserved_addresses",
        ),
        ({"hosts__ctl1__controller_role": "backup"}, "controllers: sdn_ha_controller_role = 'none'"),
        ({"hosts__ctl2__controller_role": "master"}, "controllers: sdn_ha_controller_role = 'ctl1, ctl2'"),
        ({"hosts__ctl2__controller_role": "primary"}, "ctl2: sdn_ha_controller_role = 'primary' must be one of"),
        (
            {"hosts__sw1__addresses": {"switch": "198.18.1.300/24"}},
            "sw1: sdn_ha_addresses.switch = '198.18.1.300/24' is not an address/prefix",
        ),
        ({"hosts__sw1__addresses": {"switch": "198.18.1.10"}}, "has no prefix length"),
        ({"segments__switch": "198.18.1.0/33"}, "all: sdn_ha_segments.switch = '198.18.1.0/33' is not a CIDR"),
        ({"segments__switch": "198.18.1.5/24"}, "has host bits set"),
        ({"front_vip": "not-an-ip"}, "all: sdn_ha_front_vip = 'not-an-ip' is not an IP address"),
        (
            {"hosts__ctl2__addresses": {"control": "198.18.2.22/24"}},
            "ctl2: sdn_ha_addresses.control = '198.18.2.22/24' is outside segment 'control'",
        ),
        ({"hosts__ctl2__addresses": {"transit": "198.18.2.22/24"}}, "has no address on the controller segment"),
        ({"hosts__lb1__addresses": {"transit": "198.18.2.11/24"}}, "lb1: sdn_ha_addresses"),
        ({"hosts__ctl2__addresses": {"lab": "198.18.3.22/24"}}, "names segment 'lab', which is not in sdn_ha_segments"),
        ({"hosts__lb1__addresses": {"transit": "198.18.2.11/25", "control": "198.18.3.11/24"}}, "has prefix /25"),
        ({"hosts__sw1__datapath_id": "zz"}, "sw1: sdn_ha_datapath_id = 'zz' is not a datapath id"),
        ({"hosts__rtr1__routes": [{"to": "198.18.3.0/24"}]}, "rtr1: sdn_ha_routes[0]"),
        ({"openflow_ports": [70000]}, "sdn_ha_openflow_ports = 70000"),
    ],
)
def test_each_bad_input_is_named(changes, message):
    errors = errors_for(**changes)
    assert any(message in error for error in errors), errors


def test_every_problem_is_reported_at_once():
    errors = errors_for(front_vip="198.18.3.100", hosts__ctl1__controller_role="backup")
    assert len(errors) == 2


def test_a_second_switch_with_the_same_datapath_id_is_rejected():
    data = copy.deepcopy(LAB)
    data["hosts"]["sw2"] = copy.deepcopy(data["hosts"]["sw1"])
    data["hosts"]["sw2"]["addresses"] = {"switch": "198.18.1.11/24"}
    errors = validate(Topology(**data))
    assert errors == ["sw2: sdn_ha_datapath_id = '0x1' is already used by sw1"]


def test_the_mode_must_be_proxy_or_nat():
    (error,) = validate(Topology(**{**copy.deepcopy(LAB), "mode": "natt"}))
    assert error == "all: sdn_ha_mode = 'natt' must be one of proxy, nat"


def test_nat_mode_needs_every_lb_on_the_sync_segment():
    topo = copy.deepcopy(LAB)
    assert validate(Topology(**topo)) == []
    (error,) = validate(Topology(**{**topo, "mode": "nat"}))
    assert error.startswith("lb1: sdn_ha_addresses = {")
    assert error.endswith("has no address on segment 'sync', where conntrackd syncs in nat mode")
    topo["hosts"]["lb1"]["addresses"]["sync"] = "198.18.4.11/24"
    assert validate(Topology(**{**topo, "mode": "nat"})) == []
