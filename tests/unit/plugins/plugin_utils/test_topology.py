import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.sdn_ha.control_plane.plugins.plugin_utils.topology import (
    controller_pool,
    interface_for,
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
        },
        {"name": "sw1", "groups": ["switches"], "addresses": {"switch": "198.18.1.10/24"}, "datapath_id": "1"},
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
