"""The lab's network check: what it accepts, and every way it refuses."""

import copy
import ipaddress

import labnet
import pytest

PLAN = labnet.Plan(
    "sdn-ha",
    [
        labnet.Segment("switch", ipaddress.ip_network("198.18.1.0/24"), "sdn-ha-switch", ["198.18.1.10"]),
        labnet.Segment("transit", ipaddress.ip_network("198.18.2.0/24"), "sdn-ha-transit", ["198.18.2.100"]),
    ],
)
GOOD = {
    "switch": {
        "network": {"interface": "sdn-ha-switch", "subnets": ["198.18.1.0/24"], "internal": True},
        "bridge_addresses": ["198.18.1.1/24"],
        "routes": {"198.18.1.10": {"dev": "sdn-ha-switch"}},
    },
    "transit": {
        "network": {"interface": "sdn-ha-transit", "subnets": ["198.18.2.0/24"], "internal": True},
        "bridge_addresses": ["198.18.2.1/24"],
        "routes": {"198.18.2.100": {"dev": "sdn-ha-transit"}},
    },
}
ENV = {"CONTAINERS_CONF": str(labnet.CONTAINERS_CONF), "CONTAINERS_STORAGE_CONF": str(labnet.STORAGE_CONF)}


def broken(segment, key, value):
    facts = copy.deepcopy(GOOD)
    facts[segment][key] = value
    return facts


def test_a_lab_as_pinned_passes():
    assert labnet.check_network(PLAN, GOOD) == []


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (broken("switch", "network", None), "no network sdn-ha-switch; the lab is not up"),
        (broken("switch", "bridge_addresses", []), "does not hold 198.18.1.1/24 on bridge sdn-ha-switch"),
        (
            broken("transit", "routes", {"198.18.2.100": {"dev": "eth0", "gateway": "10.0.2.2"}}),
            "routes 198.18.2.100 via 10.0.2.2 dev eth0, not through bridge sdn-ha-transit",
        ),
        (
            broken("transit", "routes", {"198.18.2.100": {"dev": "sdn-ha-switch"}}),
            "dev sdn-ha-switch, not through bridge sdn-ha-transit",
        ),
        (
            broken("switch", "routes", {"198.18.1.10": {"error": "RTNETLINK answers: No route to host"}}),
            "no route to 198.18.1.10",
        ),
        (
            broken("switch", "network", {"interface": "podman1", "subnets": ["198.18.1.0/24"], "internal": True}),
            "has bridge podman1",
        ),
        (
            broken(
                "switch", "network", {"interface": "sdn-ha-switch", "subnets": ["198.18.1.0/24"], "internal": False}
            ),
            "is not internal",
        ),
    ],
)
def test_each_unsafe_network_is_refused_with_its_cause(facts, expected):
    problems = labnet.check_network(PLAN, facts)
    assert len(problems) == 1
    assert expected in problems[0]
    assert "make lab" in problems[0]


def test_podman_that_is_not_the_labs_is_refused():
    pins = labnet.podman_pins()
    assert pins["network backend"] == "netavark"
    assert labnet.check_podman(pins, dict(pins), ENV) == []
    cni = dict(pins, **{"network backend": "cni"})
    assert labnet.check_podman(pins, cni, ENV) == ["podman's network backend is 'cni', but the lab pins 'netavark'"]
    problems = labnet.check_podman(pins, dict(pins), {"CONTAINERS_CONF": str(labnet.CONTAINERS_CONF)})
    assert len(problems) == 1
    assert "CONTAINERS_STORAGE_CONF is 'unset'" in problems[0]


def test_the_lab_inventory_gives_each_segment_its_bridge_and_addresses():
    plan = labnet.load_plan()
    segments = {s.name: s for s in plan.segments}
    assert segments["transit"].bridge == "sdn-ha-transit"
    assert segments["transit"].gateway == "198.18.2.1"
    assert "198.18.2.100" in segments["transit"].addresses  # the front VIP
    assert "198.18.1.10" in segments["switch"].addresses  # sw1
    assert all(s.addresses for s in plan.segments)


def test_the_network_definition_pins_bridge_gateway_and_isolation():
    definition = labnet.network_definition(PLAN.segments[0])
    assert definition["network_interface"] == "sdn-ha-switch"
    assert definition["subnets"] == [{"subnet": "198.18.1.0/24", "gateway": "198.18.1.1"}]
    assert definition["internal"] is True
    assert len(definition["id"]) == 64


def test_the_containers_open_files_must_fit_this_machines_hard_limit():
    assert labnet.check_limits(16384, 20000) == []
    (problem,) = labnet.check_limits(16384, 1024)
    assert "16384 open files" in problem and "hard limit is 1024" in problem


def test_the_lab_containers_carry_the_fleet_segment_in_proxy_mode():
    """Per switch, proxy mode's sidecar holds 3 sockets and HAProxy 2 (the
    lab's haproxy_maxconn bounds those); the fleet segment holds up to
    1000 switches."""
    nofile = labnet.container_nofile()
    lab = labnet.read_yaml(labnet.INVENTORY / "group_vars" / "all" / "lab.yml")
    topology = labnet.read_yaml(labnet.INVENTORY / "group_vars" / "all" / "topology.yml")
    fleet = ipaddress.ip_network(topology["sdn_ha_segments"]["fleet"]).num_addresses - 3  # network, broadcast, .1
    assert fleet >= 1000
    assert 2 * lab["haproxy_maxconn"] + 64 <= nofile
    assert 3 * fleet + 64 <= nofile and lab["haproxy_maxconn"] >= fleet
