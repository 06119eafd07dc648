import json

import pytest
from ansible_collections.sdn_ha.control_plane.plugins.modules import static_routes


class FakeModule:
    """Records ip commands and answers `ip -j route show` from a route table."""

    def __init__(self, table):
        self.table = table
        self.commands = []

    def run_command(self, argv, check_rc=False):
        if "-j" in argv:
            return 0, json.dumps(self.table), ""
        self.commands.append(argv)
        return 0, "", ""


def test_destinations_have_one_spelling():
    assert static_routes.normalise("0.0.0.0/0") == "default"
    assert static_routes.normalise("default") == "default"
    assert static_routes.normalise("198.18.3.5") == "198.18.3.5/32"
    assert static_routes.route_key("198.18.3.0/24", "198.18.2.100", 0) == ("198.18.3.0/24", "198.18.2.100", 0)


def test_a_bad_destination_raises():
    with pytest.raises(ValueError):
        static_routes.route_key("198.18.3.0/33", "198.18.2.1", 0)


def test_owned_routes_read_from_json():
    module = FakeModule(
        [
            {"dst": "default", "gateway": "198.18.1.2", "dev": "eth0", "protocol": "sdn_ha"},
            {"dst": "198.18.3.5", "gateway": "198.18.1.3", "metric": 10},
            {"dst": "198.18.9.0/24", "dev": "eth0"},
        ]
    )
    assert static_routes.owned_routes(module, 222) == {
        ("default", "198.18.1.2", 0),
        ("198.18.3.5/32", "198.18.1.3", 10),
    }


def test_ip_route_tags_the_protocol():
    module = FakeModule([])
    static_routes.ip_route(module, "replace", ("default", "198.18.1.2", 0), 222)
    assert module.commands == [
        ["ip", "-4", "route", "replace", "default", "via", "198.18.1.2", "metric", "0", "proto", "222"]
    ]
