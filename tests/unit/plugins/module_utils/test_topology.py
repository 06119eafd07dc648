import copy

import pytest
from ansible_collections.sdn_ha.control_plane.plugins.module_utils.topology import Topology, fleet_switches, validate

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
        "ctl1": {
            "groups": ["controllers"],
            "addresses": {"control": "198.18.3.21/24"},
            "routes": [{"to": "default", "via": "198.18.3.254"}],
            "controller_role": "master",
        },
        "ctl2": {
            "groups": ["controllers"],
            "addresses": {"control": "198.18.3.22/24"},
            "routes": [{"to": "default", "via": "198.18.3.254"}],
            "controller_role": "backup",
        },
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
        (
            {"hosts__ctl1__controller_role": "backup"},
            "controllers: sdn_ha_controller_role: no controller is master (of ctl1, ctl2)",
        ),
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
        # IPv6, wherever an address goes: the topology is IPv4.
        ({"front_vip": "2001:db8::100"}, "all: sdn_ha_front_vip = '2001:db8::100' is IPv6; the topology is IPv4 only"),
        ({"segments__sync": "2001:db8:4::/64"}, "all: sdn_ha_segments.sync = '2001:db8:4::/64' is IPv6"),
        ({"hosts__ctl2__addresses": {"control": "2001:db8::22/64"}}, "ctl2: sdn_ha_addresses.control = '2001:db8"),
        (
            {"hosts__sw1__routes": [{"to": "default", "via": "fe80::1"}]},
            "sw1: sdn_ha_routes[0].via = 'fe80::1' is IPv6",
        ),
        # Route destinations against the host's own subnets, and twice.
        (
            {"hosts__lb1__routes": [{"to": "198.18.3.0/24", "via": "198.18.2.2"}]},
            "lb1: sdn_ha_routes[0].to = '198.18.3.0/24' overlaps 198.18.3.0/24, which lb1 is on directly "
            "(sdn_ha_addresses.control)",
        ),
        (
            {"hosts__lb1__routes": [{"to": "198.18.3.128/25", "via": "198.18.2.2"}]},
            "lb1: sdn_ha_routes[0].to = '198.18.3.128/25' overlaps 198.18.3.0/24",
        ),
        (
            {
                "hosts__lb1__routes": [
                    {"to": "198.18.1.0/24", "via": "198.18.2.2"},
                    {"to": "198.18.1.0/24", "via": "198.18.2.3"},
                ]
            },
            "lb1: sdn_ha_routes[1].to = '198.18.1.0/24' is routed already by sdn_ha_routes[0]",
        ),
        # Wrong YAML types name the host, the variable and the value.
        ({"segments": ["198.18.1.0/24"]}, "all: sdn_ha_segments = ['198.18.1.0/24'] is a list, not a mapping"),
        ({"hosts__lb1__addresses": ["198.18.2.11/24"]}, "lb1: sdn_ha_addresses = ['198.18.2.11/24'] is a list, not"),
        (
            {"hosts__rtr1__routes": {"to": "default"}},
            "rtr1: sdn_ha_routes = {'to': 'default'} is a mapping, not a list",
        ),
        ({"openflow_ports": 6653}, "all: sdn_ha_openflow_ports = 6653 is a number, not a list"),
        ({"reserved_addresses": "198.18.1.1"}, "all: sdn_ha_reserved_addresses = '198.18.1.1' is a string, not a list"),
        # A fix hint shows an address of the segment in question.
        ({"hosts__ctl2__addresses": {"control": "198.18.3.22"}}, "has no prefix length; write it as 198.18.3.10/24"),
        (
            {"hosts__sw1__addresses": {"switch": "198.18.1.x/24"}},
            "is not an address/prefix; write it as 198.18.1.10/24",
        ),
        ({"back_vip": "control-vip"}, "is not an IP address; write it as 198.18.3.100"),
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


FLEET = [{"name": "emu", "addresses": "198.18.1.100-198.18.1.163", "datapath_ids": "0x1000"}]


def fleet_errors(*entries):
    return validate(Topology(**{**copy.deepcopy(LAB), "fleet": list(entries)}))


def test_a_fleet_expands_to_one_switch_per_address_with_consecutive_datapath_ids():
    switches = fleet_switches(FLEET)
    assert len(switches) == 64
    assert switches[0] == {
        "name": "emu-1",
        "address": "198.18.1.100",
        "datapath_id": "0x1000",
        "segment": None,
        "ports": [],
    }
    assert switches[-1]["name"] == "emu-64"
    assert switches[-1]["address"] == "198.18.1.163"
    assert switches[-1]["datapath_id"] == "0x103f"
    assert [s["address"] for s in fleet_switches([{**FLEET[0], "addresses": "198.18.1.100/30"}])] == [
        "198.18.1.101",
        "198.18.1.102",
    ]
    assert fleet_switches([{**FLEET[0], "addresses": ["198.18.1.7", "198.18.1.9"]}])[1]["address"] == "198.18.1.9"
    assert fleet_errors(*FLEET) == []


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"addresses": ["198.18.1.100", "198.18.2.50"]},
            "emu-2: sdn_ha_switch_fleet[0].addresses = '198.18.2.50' is outside segment 'switch' (198.18.1.0/24)",
        ),
        (
            {"addresses": "198.18.1.9-198.18.1.11"},
            "emu-2: sdn_ha_switch_fleet[0].addresses = '198.18.1.10' is already used by sw1",
        ),
        ({"addresses": ["198.18.1.1"]}, "emu-1: sdn_ha_switch_fleet[0].addresses = '198.18.1.1' is in sdn_ha_reserved"),
        ({"addresses": "lots"}, "all: sdn_ha_switch_fleet[0].addresses = 'lots' is not a range, a CIDR or a list"),
        ({"datapath_ids": "0x0"}, "all: sdn_ha_switch_fleet[0].datapath_ids = '0x0' is not a first datapath id"),
        ({"datapath_ids": "0x1"}, "sw1: sdn_ha_datapath_id = '0x1' is already used by emu-1"),
        ({"name": "emu 1"}, "all: sdn_ha_switch_fleet[0].name = 'emu 1' must be a name of letters"),
        ({"segment": "fleet"}, "segment 'fleet', which is not in sdn_ha_segments"),
        ({"port": []}, "all: sdn_ha_switch_fleet[0].port = [] is not a fleet key"),
        ({"ports": [{"name": "p1"}]}, "sdn_ha_switch_fleet[0].ports = [{'name': 'p1'}] must be a list of"),
    ],
)
def test_each_bad_fleet_entry_is_named(entry, message):
    errors = fleet_errors({**FLEET[0], **entry})
    assert any(message in error for error in errors), errors


def test_two_fleet_entries_may_not_share_addresses_or_datapath_ids():
    second = {"name": "more", "addresses": "198.18.1.163-198.18.1.170", "datapath_ids": "0x2000"}
    errors = fleet_errors(FLEET[0], second)
    assert errors == [
        "more-1: sdn_ha_switch_fleet[1].addresses = '198.18.1.163' is already used by emu-64 "
        "(sdn_ha_switch_fleet[0].addresses); every address must be unique"
    ]
    errors = fleet_errors(FLEET[0], {**second, "addresses": "198.18.1.200", "datapath_ids": "0x1010"})
    assert errors == ["more-1: sdn_ha_switch_fleet[1].datapath_ids = '0x1010' is already used by emu-17"]


def test_fleet_names_may_not_repeat_or_clash_with_an_ansible_switch():
    errors = fleet_errors(FLEET[0], {**FLEET[0], "addresses": "198.18.1.200", "datapath_ids": "0x2000"})
    assert errors == [
        "all: sdn_ha_switch_fleet[1].name = 'emu' makes switch names already in use (emu-1); "
        "Faucet needs one name a switch"
    ]
    data = copy.deepcopy(LAB)
    data["hosts"]["emu-1"] = data["hosts"].pop("sw1")
    (error,) = validate(Topology(**{**data, "fleet": FLEET}))
    assert error.startswith("all: sdn_ha_switch_fleet[0].name = 'emu' makes switch names already in use (emu-1)")


def test_a_huge_fleet_entry_is_refused_before_it_is_expanded():
    (error,) = fleet_errors({**FLEET[0], "addresses": "10.0.0.0/8"})
    assert error == (
        "all: sdn_ha_switch_fleet[0].addresses = '10.0.0.0/8' holds 16777216 addresses; one entry may hold 65536"
    )


@pytest.mark.parametrize("mode", ["proxy", "nat"])
def test_every_mode_needs_a_backup_controller(mode):
    data = copy.deepcopy(LAB)
    data["hosts"]["lb1"]["addresses"]["sync"] = "198.18.4.11/24"
    data["hosts"]["ctl2"]["controller_role"] = "master"
    data["hosts"]["ctl1"]["controller_role"] = "backup"
    assert validate(Topology(**{**data, "mode": mode})) == []
    data["hosts"]["ctl1"]["groups"] = []
    errors = validate(Topology(**{**data, "mode": mode}))
    assert errors == [
        "controllers: sdn_ha_controller_role: no controller is a backup (of ctl2); the backups carry the switches "
        "and the master never does: give at least one sdn_ha_controller_role: backup"
    ]


def test_a_wrong_type_is_the_only_error_it_causes():
    """The root cause, not follow-on errors about what it hid."""
    assert errors_for(segments=["198.18.1.0/24"])[0].startswith("all: sdn_ha_segments = [")
    (error,) = errors_for(hosts__rtr1__routes={"to": "default"})
    assert error.startswith("rtr1: sdn_ha_routes")
    (error,) = errors_for(hosts__ctl2__addresses=["198.18.3.22/24"])
    assert error == (
        "ctl2: sdn_ha_addresses = ['198.18.3.22/24'] is a list, not a mapping; write it as {control: 198.18.3.22/24}"
    )


def test_tls_needs_proxy_mode_the_relay_a_ca_and_every_switch_and_lbs_certificate_and_key():
    topo = copy.deepcopy(LAB)
    for host in ("sw1", "lb1"):
        topo["hosts"][host]["tls"] = ["cert", "key"]
    assert validate(Topology(**{**topo, "tls": True, "tls_ca": True})) == []
    topo["hosts"]["lb1"]["addresses"]["sync"] = "198.18.4.11/24"
    topo["hosts"]["sw1"]["tls"] = ["cert"]
    errors = validate(Topology(**{**topo, "tls": True, "mode": "nat", "mirror": False}))
    assert errors[0].startswith("all: sdn_ha_mode = 'nat' cannot carry sdn_ha_tls: in nat mode")
    assert errors[1].startswith("all: sdn_ha_mirror = False leaves no one to end sdn_ha_tls")
    assert errors[2] == (
        "all: sdn_ha_tls_ca = 'none' is needed with sdn_ha_tls: the CA certificate (PEM) that signs them all"
    )
    assert (
        errors[3]
        == "sw1: sdn_ha_tls_key = 'none' is needed with sdn_ha_tls: this host's private key (PEM, in Ansible Vault)"
    )
    assert len(errors) == 4
    # Without TLS, none of it is asked for.
    assert validate(Topology(**{**copy.deepcopy(LAB), "tls_ca": False})) == []


def test_the_lb_pairs_vrrp_ids_and_priorities():
    data = copy.deepcopy(LAB)
    data["hosts"]["lb2"] = {
        "groups": ["load_balancers"],
        "addresses": {"transit": "198.18.2.12/24", "control": "198.18.3.12/24"},
        "routes": [{"to": "198.18.1.0/24", "via": "198.18.2.2"}],
        "vrrp": {"priority": 110},
    }
    assert validate(Topology(**data)) == []
    data["hosts"]["lb1"]["vrrp"] = {"front_vrid": 300, "priority": 255}
    data["hosts"]["lb2"]["vrrp"] = {"back_vrid": 51}
    assert validate(Topology(**data)) == [
        "lb1: keepalived_front_vrid = 300 is not a VRRP router id; use 1-255",
        "lb1: keepalived_priority = 255 is not a VRRP priority; use 1-254 (255 is for the address owner)",
        "lb2: keepalived_back_vrid = 51 is also keepalived_front_vrid; the front and back VRRP instances need "
        "different ids",
        "lb2: keepalived_back_vrid = 51 differs from lb1's (52); the LBs of the pair need the same id, or each one is "
        "master alone",
    ]


@pytest.mark.parametrize(
    ("changes", "mode", "message"),
    [
        (
            {"hosts__lb1__routes": []},
            "proxy",
            "lb1: sdn_ha_routes: has no route to segment 'switch' (198.18.1.0/24), where sw1 is",
        ),
        (
            {"hosts__sw1__routes": [{"to": "198.18.3.0/24", "via": "198.18.1.2"}]},
            "proxy",
            "sw1: sdn_ha_routes: has no route to sdn_ha_front_vip (198.18.2.100)",
        ),
        (
            {"hosts__ctl2__routes": [{"to": "198.18.9.0/24", "via": "198.18.3.254"}]},
            "nat",
            "ctl2: sdn_ha_routes: has no route to segment 'switch' (198.18.1.0/24), where sw1 is",
        ),
    ],
)
def test_routes_an_operator_forgets(changes, mode, message):
    errors = errors_for(mode=mode, hosts__lb1__addresses__sync="198.18.4.11/24", **changes)
    assert len(errors) == 1 and errors[0].startswith(message), errors


def test_a_master_needs_no_route_to_the_switches_and_proxy_mode_backups_neither():
    data = copy.deepcopy(LAB)
    data["hosts"]["ctl1"]["routes"] = []
    data["hosts"]["ctl2"]["routes"] = []
    assert validate(Topology(**data)) == []


def with_lb2(data, addresses=None):
    data["hosts"]["lb2"] = {
        "groups": ["load_balancers"],
        "addresses": addresses or {"transit": "198.18.2.12/24", "control": "198.18.3.12/24"},
        "routes": [{"to": "198.18.1.0/24", "via": "198.18.2.2"}],
    }
    return data


def test_both_lbs_must_send_their_adverts_over_one_segment():
    data = with_lb2(copy.deepcopy(LAB))
    data["hosts"]["lb1"]["addresses"]["sync"] = "198.18.4.11/24"
    # lb1 defaults to the sync segment, lb2 (no address there) to each VIP's own.
    assert validate(Topology(**data)) == [
        "lb2: sdn_ha_addresses: has no address on segment 'sync', where lb1 sends its VRRP adverts"
        " (keepalived_vrrp_segment is that segment when the LB has an address there): the LBs would never hear"
        " each other, and both would hold the VIPs. Give it an address there, such as 198.18.4.12/24, or set"
        " keepalived_vrrp_segment the same on every LB"
    ]
    data["hosts"]["lb2"]["addresses"]["sync"] = "198.18.4.12/24"
    data["hosts"]["lb2"]["vrrp"] = {"vrrp_segment": ""}
    assert validate(Topology(**data)) == [
        "lb2: keepalived_vrrp_segment = '' differs from lb1's adverts, over segment 'sync': the LBs would never"
        " hear each other, and both would hold the VIPs. Set it the same on every LB"
    ]
    # Three LBs: the segment most of them use is meant, whatever the names.
    data["hosts"]["lb0"] = copy.deepcopy(data["hosts"]["lb2"])
    data["hosts"]["lb0"]["addresses"] = {"transit": "198.18.2.10/24", "control": "198.18.3.10/24"}
    data["hosts"]["lb1"]["vrrp"] = {"vrrp_segment": "sync"}
    assert [e.split(" = ")[0] for e in validate(Topology(**data))] == ["lb1: keepalived_vrrp_segment"]
    del data["hosts"]["lb0"]
    data["hosts"]["lb1"]["vrrp"] = {"vrrp_segment": ""}
    assert validate(Topology(**data)) == []
    data["hosts"]["lb1"]["vrrp"] = {"vrrp_segment": "switch"}
    assert validate(Topology(**data))[0].startswith(
        "lb1: keepalived_vrrp_segment = 'switch' is a segment this LB has no address on (control, sync, transit)"
    )


def test_a_shared_variable_set_differently_on_some_hosts_names_each_of_them():
    data = copy.deepcopy(LAB)
    for host in data["hosts"].values():
        host["shared"] = {"sdn_ha_mode": "proxy", "sdn_ha_front_vip": "198.18.2.100"}
    data["hosts"]["lb1"]["shared"] = {"sdn_ha_mode": "nat", "sdn_ha_front_vip": "198.18.2.100"}
    del data["hosts"]["ctl2"]["shared"]["sdn_ha_front_vip"]
    assert validate(Topology(**data)) == [
        "ctl2: sdn_ha_front_vip: is not set for this host, but is '198.18.2.100' on ctl1, lb1, rtr1 and 1 more;"
        " a shared variable must be the same on every host: set it once, in group_vars/all",
        "lb1: sdn_ha_mode = 'nat' differs from 'proxy' on ctl1, ctl2, rtr1 and 1 more; a shared variable must be"
        " the same on every host: set it once, in group_vars/all",
    ]


def test_a_shared_variable_set_on_one_host_only_differs_from_the_default():
    data = copy.deepcopy(LAB)
    data["hosts"]["lb1"]["shared"] = {"sdn_ha_tls": True}
    assert validate(Topology(**data)) == [
        "lb1: sdn_ha_tls = True differs from False (the default) on ctl1, ctl2, rtr1 and 1 more; a shared variable"
        " must be the same on every host: set it once, in group_vars/all"
    ]
    data["hosts"]["ctl1"]["shared"] = {"sdn_ha_tls": "yes"}
    data["hosts"]["ctl2"]["shared"] = {"sdn_ha_tls": True}
    data["hosts"]["rtr1"]["shared"] = {"sdn_ha_tls": "true"}
    assert validate(Topology(**data)) == [
        "sw1: sdn_ha_tls: is not set for this host, so it is the default False, but is True on ctl1, ctl2, lb1 and"
        " 1 more; a shared variable must be the same on every host: set it once, in group_vars/all"
    ]


def test_shared_values_that_read_the_same_are_the_same():
    data = copy.deepcopy(LAB)
    # The default, set on some hosts only; a port as a string; a boolean as YAML 1.1 spells it.
    data["hosts"]["lb1"]["shared"] = {"sdn_ha_mirror": True, "sdn_ha_openflow_ports": ["6653"]}
    data["hosts"]["rtr1"]["shared"] = {"sdn_ha_mirror": "yes", "sdn_ha_mode": "proxy"}
    assert validate(Topology(**data)) == []
