from ansible_collections.sdn_ha.control_plane.plugins.modules.ovs_bridge import (
    bridge_changes,
    controller_changes,
    transaction,
)

PARAMS = {
    "name": "br0",
    "datapath_type": "netdev",
    "fail_mode": "secure",
    "protocols": ["OpenFlow13"],
    "datapath_id": "0x1",
    "controllers": ["tcp:198.18.2.100:6653"],
    "max_backoff": 1000,
    "inactivity_probe": 5000,
    "ports": [{"name": "p1", "number": 1}],
}

CONVERGED = {
    ("Bridge", "br0", "datapath_type"): "netdev",
    ("Bridge", "br0", "fail_mode"): "secure",
    ("Bridge", "br0", "protocols"): "[OpenFlow13]",
    ("Bridge", "br0", "other_config:datapath-id"): "0000000000000001",
    ("Interface", "p1", "ofport_request"): "1",
    ("Controller", "br0", "max_backoff"): "1000",
    ("Controller", "br0", "inactivity_probe"): "5000",
}


class FakeOvs:
    def __init__(self, values, controllers, ports):
        self.values = values
        self.controllers = controllers
        self.ports = ports

    def get(self, table, record, column):
        return self.values.get((table, record, column), "")

    def lines(self, *args):
        return self.controllers if args[0] == "get-controller" else self.ports


def test_a_converged_bridge_needs_nothing():
    ovs = FakeOvs(CONVERGED, ["tcp:198.18.2.100:6653"], ["p1"])
    assert bridge_changes(ovs, PARAMS, exists=True) == []
    assert controller_changes(ovs, PARAMS) == []


def test_a_new_bridge_is_built_in_one_transaction():
    changes = bridge_changes(FakeOvs({}, [], []), PARAMS, exists=False)
    args = transaction(changes)
    assert args[:4] == ["--", "--may-exist", "add-br", "br0"]
    assert ["set", "Bridge", "br0", "other_config:datapath-id=0000000000000001"] in changes
    assert ["set-controller", "br0", "tcp:198.18.2.100:6653"] in changes
    assert ["set", "Interface", "p1", "ofport_request=1"] in changes


def test_only_what_differs_changes():
    values = dict(CONVERGED)
    values[("Bridge", "br0", "fail_mode")] = "standalone"
    values[("Controller", "br0", "max_backoff")] = "8000"
    ovs = FakeOvs(values, ["tcp:198.18.9.9:6653"], ["p1"])
    assert bridge_changes(ovs, PARAMS, exists=True) == [
        ["set", "Bridge", "br0", "fail_mode=secure"],
        ["set-controller", "br0", "tcp:198.18.2.100:6653"],
    ]
    assert controller_changes(ovs, PARAMS) == [["set", "Controller", "br0", "max_backoff=1000"]]
