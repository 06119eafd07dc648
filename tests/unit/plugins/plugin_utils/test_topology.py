import re

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.sdn_ha.control_plane.plugins.plugin_utils.topology import (
    controller_pool,
    data_path,
    interface_for,
    switches,
    topology_hosts,
)

HOSTVARS = {
    "ctl1": {
        "group_names": ["controllers"],
        "sdn_ha_controller_role": "master",
        "sdn_ha_addresses": {"control": "198.18.3.21/24"},
    },
    "ctl2": {
        "group_names": ["controllers"],
        "sdn_ha_controller_role": "backup",
        "sdn_ha_addresses": {"control": "198.18.3.22/24"},
    },
    "sw1": {"group_names": ["switches"], "sdn_ha_datapath_id": 1, "sdn_ha_addresses": {"switch": "198.18.1.10/24"}},
}

FACTS = {
    "interfaces": ["lo", "eth0", "eth1"],
    "all_ipv4_addresses": ["198.18.2.11", "198.18.3.11"],
    "lo": {"ipv4": {"address": "127.0.0.1"}},
    "eth0": {"ipv4": {"address": "198.18.2.11"}},
    "eth1": {"ipv4": {"address": "198.18.3.11"}, "ipv4_secondaries": [{"address": "198.18.3.254"}]},
}


def test_topology_hosts_takes_only_the_shared_schema():
    hosts = topology_hosts(HOSTVARS, ["ctl1", "sw1"])
    assert hosts == [
        {
            "name": "ctl1",
            "groups": ["controllers"],
            "addresses": {"control": "198.18.3.21/24"},
            "controller_role": "master",
            "tls": [],
        },
        {
            "name": "sw1",
            "groups": ["switches"],
            "addresses": {"switch": "198.18.1.10/24"},
            "datapath_id": "1",
            "tls": [],
        },
    ]


def test_interfaces_are_found_by_address():
    assert interface_for(FACTS, "198.18.2.11/24") == "eth0"
    assert interface_for(FACTS, "198.18.3.254") == "eth1"


def test_a_missing_address_says_what_the_host_has():
    with pytest.raises(AnsibleFilterError, match=r"198\.18\.2\.11, 198\.18\.3\.11"):
        interface_for(FACTS, "198.18.9.9/24")


def test_the_pool_holds_only_backups_by_default():
    assert controller_pool(HOSTVARS, ["ctl1", "ctl2"]) == [{"name": "ctl2", "address": "198.18.3.22"}]
    assert controller_pool(HOSTVARS, ["ctl1", "ctl2"], "master") == [{"name": "ctl1", "address": "198.18.3.21"}]


def test_switches_lists_the_ansible_switches_then_the_fleet():
    fleet = [{"name": "emu", "addresses": "198.18.1.100-198.18.1.101", "datapath_ids": "0x1000"}]
    result = switches(HOSTVARS, ["sw1"], fleet)
    assert [(s["name"], s["address"], s["datapath_id"], s["managed"]) for s in result] == [
        ("sw1", "198.18.1.10", "1", True),
        ("emu-1", "198.18.1.100", "0x1000", False),
        ("emu-2", "198.18.1.101", "0x1001", False),
    ]
    with pytest.raises(AnsibleFilterError, match="sdn_ha_switch_fleet: datapath_ids = 'x' is not a first datapath id"):
        switches(HOSTVARS, [], [{**fleet[0], "datapath_ids": "x"}])


def test_topology_hosts_says_whether_the_tls_material_is_there_never_what_it_is():
    from ansible_collections.sdn_ha.control_plane.plugins.plugin_utils.topology import topology_hosts

    hostvars = {"sw1": {"sdn_ha_tls_cert": "-----BEGIN CERTIFICATE-----", "sdn_ha_tls_key": "secret"}, "ctl1": {}}
    hosts = topology_hosts(hostvars, ["sw1", "ctl1"])
    assert hosts[0]["tls"] == ["cert", "key"] and "secret" not in repr(hosts)
    assert hosts[1]["tls"] == []


def test_topology_hosts_passes_the_shared_variables_and_long_ones_as_a_digest():
    fleet = [{"name": "edge", "addresses": f"198.18.1.{n}"} for n in range(100, 140)]
    hostvars = {
        "lb1": {"group_names": ["load_balancers"], "sdn_ha_mode": "nat", "sdn_ha_switch_fleet": fleet},
        "lb2": {"group_names": ["load_balancers"], "sdn_ha_mode": "nat", "sdn_ha_switch_fleet": list(fleet)},
    }
    one, two = topology_hosts(hostvars, ["lb1", "lb2"])
    assert one["shared"]["sdn_ha_mode"] == "nat"
    assert one["shared"]["sdn_ha_switch_fleet"].startswith("<a value of ")
    assert one["shared"] == two["shared"]
    hostvars["lb2"]["sdn_ha_switch_fleet"] = fleet[:-1]
    assert topology_hosts(hostvars, ["lb2"])[0]["shared"]["sdn_ha_switch_fleet"] != one["shared"]["sdn_ha_switch_fleet"]


def test_a_null_advert_segment_is_each_vips_own_as_the_role_reads_it():
    hostvars = {"lb1": {"group_names": ["load_balancers"], "keepalived_vrrp_segment": None}}
    assert topology_hosts(hostvars, ["lb1"])[0]["vrrp"] == {"vrrp_segment": ""}


@pytest.mark.parametrize(
    ("given", "on_path", "tracked", "services"),
    [
        ({}, {"haproxy", "capture", "gate"}, ["haproxy"], ["haproxy", "sdn-ha-mirror"]),
        (
            {"sdn_ha_tls": "true"},
            {"haproxy", "relay"},
            ["haproxy", "sdn_ha_mirror"],
            ["haproxy", "sdn-ha-mirror"],
        ),
        ({"sdn_ha_mirror": False}, {"haproxy", "gate"}, ["haproxy"], ["haproxy"]),
        (
            {"sdn_ha_mode": "nat"},
            {"nat", "capture", "gate", "view_sync", "prober"},
            ["nat_prober"],
            ["conntrackd", "sdn-ha-prober", "sdn-ha-mirror"],
        ),
        (
            {"sdn_ha_mode": "nat", "sdn_ha_mirror": "no"},
            {"nat", "gate", "prober"},
            ["nat_prober"],
            ["conntrackd", "sdn-ha-prober"],
        ),
    ],
)
def test_data_path_decides_each_mode_once(given, on_path, tracked, services):
    path = data_path({"sdn_ha_mode": None, **given})
    flags = {key for key, value in path.items() if value is True}
    assert flags - {"mirror"} == on_path
    assert path["mirror"] is (given.get("sdn_ha_mirror", True) not in (False, "no"))
    assert path["mode"] == given.get("sdn_ha_mode", "proxy")
    assert [process["name"] for process in path["tracked"]] == tracked
    assert all(process["pgrep"] and process["unit"] for process in path["tracked"])
    assert path["services"] == services


@pytest.mark.parametrize(
    ("name", "command_line"),
    [
        ("sdn_ha_mirror", "/opt/sdn_ha_mirror/venv/bin/python3 -m sdn_ha_mirror --listen 198.18.2.100:6653"),
        ("nat_prober", "/usr/bin/python3 -m sdn_ha_mirror.probe 198.18.3.22:6653 --switches /etc/sdn_ha/switches"),
        ("identity_gate", "/usr/bin/python3 -m sdn_ha_mirror.gate --queue 7 --bindings /etc/sdn_ha/bindings"),
    ],
)
def test_a_process_pattern_finds_the_process_and_not_a_shell_that_holds_it(name, command_line):
    """pgrep -f matches its extended regular expression against each command
    line; a shell task that runs pgrep holds the pattern in its own."""
    processes = data_path({})["processes"]
    flag, pattern = processes[name]["pgrep"].split()
    assert flag == "-f"
    assert re.search(pattern, command_line)
    assert not re.search(pattern, f"/bin/sh -c pgrep -f '{pattern}' >/dev/null && echo relay")
    others = [p for other, p in processes.items() if other != name and p["pgrep"].startswith("-f")]
    assert not any(re.search(p["pgrep"].split()[1], command_line) for p in others)
