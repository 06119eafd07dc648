"""The controller role's Faucet launcher: the running-peers view it gives
each datapath's service behaves as the list Faucet builds, and costs nothing
until it is read."""

import importlib.machinery
import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

LAUNCHER = Path(__file__).resolve().parents[3] / "roles" / "controller" / "files" / "sdn-ha-faucet"


def load():
    loader = importlib.machinery.SourceFileLoader("sdn_ha_faucet", str(LAUNCHER))
    spec = importlib.util.spec_from_loader("sdn_ha_faucet", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


launcher = load()


class Valve:
    """A valve as the view reads it (valve.dp.dyn_running), counting reads."""

    reads = 0

    def __init__(self, name: str, running: bool) -> None:
        self.name = name
        self._dp = SimpleNamespace(dyn_running=running)

    @property
    def dp(self):
        Valve.reads += 1
        return self._dp

    def __repr__(self) -> str:
        return self.name


class Manager:
    """Faucet's ValvesManager, as far as the launcher touches it."""

    def __init__(self, valves: dict) -> None:
        self.valves = valves

    def _other_running_valves(self, valve):  # Faucet's own
        return [other for other in self.valves.values() if valve != other and other.dp.dyn_running]


@pytest.fixture
def valves() -> dict:
    return {name: Valve(name, running) for name, running in [("a", True), ("b", False), ("c", True), ("d", True)]}


def test_the_view_reads_as_faucets_list(valves):
    for valve in valves.values():
        expected = Manager(valves)._other_running_valves(valve)
        view = launcher.RunningPeers(valves, valve)
        assert list(view) == expected
        assert len(view) == len(expected)
        assert bool(view) is bool(expected)
        assert set(view) == set(expected)
        assert [view[i] for i in range(len(view))] == expected
        assert view[-1] == expected[-1]
        assert all(other in view for other in expected)
        assert valve not in view
        assert valves["b"] not in view


def test_an_empty_view_is_false(valves):
    alone = {"a": valves["a"], "b": valves["b"]}
    view = launcher.RunningPeers(alone, valves["a"])
    assert not view
    assert len(view) == 0
    with pytest.raises(IndexError):
        view[0]


def test_the_view_reads_the_valves_as_they_are_when_used(valves):
    view = launcher.RunningPeers(valves, valves["a"])
    valves["b"]._dp.dyn_running = True
    valves["e"] = Valve("e", True)
    del valves["d"]
    assert list(view) == [valves["b"], valves["c"], valves["e"]]


def test_a_view_costs_nothing_until_read():
    class Patched(Manager):
        _other_running_valves = Manager._other_running_valves

    fleet = {f"v{i}": Valve(f"v{i}", True) for i in range(500)}
    assert launcher.share_running_peers(Patched)
    manager = Patched(fleet)
    Valve.reads = 0
    views = [manager._other_running_valves(valve) for valve in fleet.values()]
    assert Valve.reads == 0  # Faucet's own lists would have read 500 x 499
    assert len(views[0]) == 499
    assert Valve.reads == 499  # every other valve once
    assert Manager(fleet)._other_running_valves(fleet["v0"]) == list(views[0])


def test_a_faucet_without_the_method_is_left_unchanged():
    class Other:
        pass

    assert not launcher.share_running_peers(Other)
    assert not hasattr(Other, "_other_running_valves")
