#!/usr/bin/env python3
"""The lab's network, pinned and checked: lab traffic never leaves this machine.

The lab's podman runs with the project's own containers.conf and storage.conf
(netavark, runc, storage of its own). Each lab segment is an internal
netavark network whose bridge carries the segment's name, and on which the
host holds the segment's reserved first address. Every entry point that
talks to lab addresses runs `check` first: it stops with a message that says
what is wrong and how to fix it unless podman is the lab's podman and the
host reaches every lab address through that address's own bridge.

    labnet.py check [--podman-only]            stop unless all is as pinned
    labnet.py facts                            print what podman and the host
                                               report, as JSON, without judging
    labnet.py define                           write the networks' definitions
    labnet.py guard up|down                    the guard routes (see below)
    labnet.py legacy                           remove an older lab from podman's
                                               default storage

Guard routes: while the lab exists, each segment also has an `unreachable`
route of the lowest priority. The bridge's own route wins while the bridge is
up; when netavark removes the bridge (with its last container), packets to the
segment fail on this machine instead of following the default route.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import os
import resource
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
INVENTORY = ROOT / "inventories" / "lab"
CONTAINERS_CONF = ROOT / "lab" / "containers.conf"
STORAGE_CONF = ROOT / "lab" / "storage.conf"
GUARD_METRIC = 4294967295  # the lowest priority a route can have
IFNAMSIZ = 15
FIX_ENV = (
    "run it through make, which exports CONTAINERS_CONF and CONTAINERS_STORAGE_CONF, or export them as "
    "docs/testing.md (Running one scenario) shows"
)


class LabNetworkError(Exception):
    """The lab's network is not what the lab needs; the message says why and what to do."""


@dataclass
class Segment:
    name: str
    subnet: ipaddress.IPv4Network
    bridge: str
    addresses: list[str] = field(default_factory=list)

    @property
    def gateway(self) -> str:
        return str(self.subnet.network_address + 1)


@dataclass
class Plan:
    lab_name: str
    segments: list[Segment]


def read_yaml(path: Path) -> dict:
    """A YAML file of the lab's inventory or of a role, as a dictionary."""
    return yaml.safe_load(path.read_text()) or {}


def load_plan(inventory: Path = INVENTORY) -> Plan:
    """The segments, bridges and host addresses the lab inventory describes."""
    shared: dict = {}
    for path in sorted((inventory / "group_vars" / "all").glob("*.yml")):
        shared.update(read_yaml(path))
    lab_name = shared["lab_name"]
    reserved = {str(a) for a in shared.get("sdn_ha_reserved_addresses", [])}
    segments = []
    for name, cidr in shared["sdn_ha_segments"].items():
        segment = Segment(name, ipaddress.ip_network(cidr), f"{lab_name}-{name}")
        if len(segment.bridge) > IFNAMSIZ:
            raise LabNetworkError(
                f"segment {name}: the bridge name {segment.bridge} is longer than {IFNAMSIZ} characters; "
                "shorten lab_name or the segment's name"
            )
        if segment.gateway not in reserved:
            raise LabNetworkError(
                f"segment {name}: the host holds {segment.gateway} on the lab bridge, but "
                f"sdn_ha_reserved_addresses does not reserve it; add it there"
            )
        segments.append(segment)
    wanted = [str(shared[k]) for k in ("sdn_ha_front_vip", "sdn_ha_back_vip") if k in shared]
    # A host's addresses: host_vars/HOST.yml, or host_vars/HOST/main.yml
    # (beside files this does not read, such as the vaulted TLS keys).
    host_vars = inventory / "host_vars"
    for path in sorted([*host_vars.glob("*.yml"), *host_vars.glob("*/main.yml")]):
        wanted += [str(a).split("/")[0] for a in (read_yaml(path).get("sdn_ha_addresses") or {}).values()]
    for address in wanted:
        for segment in segments:
            if ipaddress.ip_address(address) in segment.subnet and address not in segment.addresses:
                segment.addresses.append(address)
    return Plan(lab_name, segments)


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, text=True, capture_output=True, check=False)


def _json(*argv: str):
    result = _run(*argv)
    if result.returncode != 0:
        raise LabNetworkError(f"`{' '.join(argv)}` failed: {result.stderr.strip() or result.returncode}")
    return json.loads(result.stdout or "null")


# --- podman -----------------------------------------------------------------


def podman_pins() -> dict[str, str]:
    """What `podman info` must report, as the lab's two config files pin it."""
    containers = tomllib.loads(CONTAINERS_CONF.read_text())
    storage = tomllib.loads(STORAGE_CONF.read_text())["storage"]
    return {
        "network backend": containers["network"]["network_backend"],
        "OCI runtime": containers["engine"]["runtime"],
        "cgroup manager": containers["engine"]["cgroup_manager"],
        "storage driver": storage["driver"],
        "storage root": storage["graphroot"],
    }


def read_podman() -> dict[str, str]:
    try:
        info = _json("podman", "info", "--format", "json")
    except FileNotFoundError as exc:
        raise LabNetworkError("podman is not installed: run `make setup`") from exc
    except LabNetworkError as exc:
        raise LabNetworkError(f"{exc}; run `make setup`") from exc
    return {
        "network backend": info["host"]["networkBackend"],
        "OCI runtime": info["host"]["ociRuntime"]["name"],
        "cgroup manager": info["host"]["cgroupManager"],
        "storage driver": info["store"]["graphDriverName"],
        "storage root": info["store"]["graphRoot"],
    }


def check_podman(pins: dict[str, str], actual: dict[str, str], env: dict[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    problems = []
    for variable, path in (("CONTAINERS_CONF", CONTAINERS_CONF), ("CONTAINERS_STORAGE_CONF", STORAGE_CONF)):
        if not env.get(variable) or Path(env[variable]).resolve() != path.resolve():
            problems.append(f"{variable} is {env.get(variable, 'unset')!r}, not {str(path)!r}: {FIX_ENV}")
    for what, wanted in pins.items():
        if actual.get(what) != wanted:
            problems.append(f"podman's {what} is {actual.get(what)!r}, but the lab pins {wanted!r}")
    return problems


def container_nofile() -> int:
    """The open files each lab container gets (default_ulimits' hard nofile)."""
    for item in tomllib.loads(CONTAINERS_CONF.read_text())["containers"]["default_ulimits"]:
        name, _, value = item.partition("=")
        if name == "nofile":
            return int(value.rpartition(":")[2])
    raise LabNetworkError(f"{CONTAINERS_CONF} sets no nofile in default_ulimits")


def check_limits(nofile: int, hard: int) -> list[str]:
    """Podman cannot give a container more open files than its own hard
    limit allows, without CAP_SYS_RESOURCE, which a sandbox may lack."""
    if nofile > hard:
        return [
            f"the lab's containers get {nofile} open files (default_ulimits in {CONTAINERS_CONF.name}), but this "
            f"machine's hard limit is {hard}: raise it (ulimit -Hn) or lower the lab's, which caps the fleet"
        ]
    return []


# --- networks ---------------------------------------------------------------


def network_definition(segment: Segment) -> dict:
    """The netavark definition of a segment's network: internal, no DNS, the
    bridge named after the segment, the host on the reserved first address.
    Written as a file because podman 4.3 cannot name the bridge itself."""
    return {
        "name": segment.bridge,
        "id": hashlib.sha256(segment.bridge.encode()).hexdigest(),
        "driver": "bridge",
        "network_interface": segment.bridge,
        "created": "2024-01-01T00:00:00Z",
        "subnets": [{"subnet": str(segment.subnet), "gateway": segment.gateway}],
        "ipv6_enabled": False,
        "internal": True,
        "dns_enabled": False,
        "ipam_options": {"driver": "host-local"},
    }


def define_networks(plan: Plan) -> list[str]:
    """Write each segment's definition into the lab's network directory;
    returns the names of those that changed."""
    directory = Path(tomllib.loads(CONTAINERS_CONF.read_text())["network"]["network_config_dir"])
    directory.mkdir(parents=True, exist_ok=True)
    changed = []
    for segment in plan.segments:
        path = directory / f"{segment.bridge}.json"
        text = json.dumps(network_definition(segment), indent=5) + "\n"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(segment.bridge)
    return changed


def read_network(plan: Plan) -> dict:
    """What the host sees: each lab network, the addresses on its bridge, and
    the route this host takes to every lab address of the segment."""
    networks = {n["name"]: n for n in _json("podman", "network", "ls", "--format", "json") or []}
    facts = {}
    for segment in plan.segments:
        network = networks.get(segment.bridge)
        interface = (network or {}).get("network_interface") or segment.bridge
        link = _run("ip", "-j", "addr", "show", "dev", interface)
        addresses = [
            f"{a['local']}/{a['prefixlen']}"
            for entry in (json.loads(link.stdout) if link.returncode == 0 and link.stdout else [])
            for a in entry.get("addr_info", [])
            if a.get("family") == "inet"
        ]
        routes = {}
        for address in segment.addresses:
            result = _run("ip", "-j", "route", "get", address)
            if result.returncode != 0:
                routes[address] = {"error": result.stderr.strip()}
            else:
                route = json.loads(result.stdout)[0]
                routes[address] = {k: route[k] for k in ("dev", "gateway", "type") if k in route}
        facts[segment.name] = {
            "network": None
            if network is None
            else {
                "interface": network.get("network_interface"),
                "subnets": [s.get("subnet") for s in network.get("subnets") or []],
                "internal": network.get("internal", False),
            },
            "bridge_addresses": addresses,
            "routes": routes,
        }
    return facts


def check_network(plan: Plan, facts: dict) -> list[str]:
    problems = []
    up = "run `make lab`"
    for segment in plan.segments:
        seen = facts[segment.name]
        where = f"segment {segment.name} ({segment.subnet})"
        network = seen["network"]
        if network is None:
            problems.append(f"{where}: the lab's podman has no network {segment.bridge}; the lab is not up: {up}")
            continue
        if network["interface"] != segment.bridge or network["subnets"] != [str(segment.subnet)]:
            problems.append(
                f"{where}: network {segment.bridge} has bridge {network['interface']} and subnets "
                f"{network['subnets']}, not {segment.bridge} and [{segment.subnet}]: run `make destroy`, then {up}"
            )
        if not network["internal"]:
            problems.append(f"{where}: network {segment.bridge} is not internal: run `make destroy`, then {up}")
        if f"{segment.gateway}/{segment.subnet.prefixlen}" not in seen["bridge_addresses"]:
            problems.append(
                f"{where}: the host does not hold {segment.gateway}/{segment.subnet.prefixlen} on bridge "
                f"{segment.bridge} (it has {seen['bridge_addresses'] or 'no address there'}; netavark removes "
                f"the bridge with the segment's last running container): {up}"
            )
        for address, route in seen["routes"].items():
            if "error" in route:
                problems.append(
                    f"{where}: the host has no route to {address} ({route['error']}; the lab's guard route "
                    f"stops it while bridge {segment.bridge} is down): {up}"
                )
            elif route.get("dev") != segment.bridge or "gateway" in route:
                via = f" via {route['gateway']}" if "gateway" in route else ""
                problems.append(
                    f"{where}: the host routes {address}{via} dev {route.get('dev')}, not through bridge "
                    f"{segment.bridge}, so lab traffic would leave this machine; remove whatever else routes "
                    f"{segment.subnet} on this host, then {up}"
                )
    return problems


def guard(plan: Plan, up: bool) -> list[str]:
    """Add (up) or remove (down) the segments' guard routes; returns those changed."""
    present = {r["dst"] for r in _json("ip", "-j", "route", "show", "type", "unreachable") or []}
    changed = []
    for segment in plan.segments:
        cidr = str(segment.subnet)
        if up and cidr not in present:
            _json("ip", "route", "add", "unreachable", cidr, "metric", str(GUARD_METRIC))
            changed.append(cidr)
        elif not up and cidr in present:
            _json("ip", "route", "del", "unreachable", cidr, "metric", str(GUARD_METRIC))
            changed.append(cidr)
    return changed


# --- an older lab in podman's default storage -------------------------------


def legacy_cleanup(plan: Plan) -> dict[str, list[str]]:
    """Earlier versions of the lab ran in podman's default storage, with
    whatever network backend the machine had recorded. Remove what they left
    there: containers carrying the lab's label, networks carrying the lab's
    segment names, and the lab's images. Nothing else is touched, and nothing
    at all if podman's default storage was never created."""
    default_root = Path("/var/lib/containers/storage")
    system_storage = Path("/etc/containers/storage.conf")
    if system_storage.exists():
        default_root = Path(tomllib.loads(system_storage.read_text()).get("storage", {}).get("graphroot", default_root))
    removed: dict[str, list[str]] = {"containers": [], "networks": [], "images": []}
    if not default_root.is_dir():
        return removed
    env = {k: v for k, v in os.environ.items() if k not in ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF")}

    def podman(*argv: str) -> str:
        result = subprocess.run(["podman", *argv], text=True, capture_output=True, check=False, env=env)
        if result.returncode != 0:
            raise LabNetworkError(f"`podman {' '.join(argv)}` in podman's default storage: {result.stderr.strip()}")
        return result.stdout

    label = f"label=sdn_ha.lab={plan.lab_name}"
    removed["containers"] = podman("ps", "--all", "--filter", label, "--format", "{{.Names}}").split()
    if removed["containers"]:
        podman("rm", "--force", "--time", "0", *removed["containers"])
    names = {s.bridge for s in plan.segments}
    removed["networks"] = [n for n in podman("network", "ls", "--format", "{{.Name}}").split() if n in names]
    if removed["networks"]:
        podman("network", "rm", *removed["networks"])
    images = podman("images", "--filter", "reference=localhost/sdn-ha-lab", "--format", "{{.Repository}}:{{.Tag}}")
    removed["images"] = images.split()
    if removed["images"]:
        podman("rmi", "--force", *removed["images"])
    return removed


# --- entry points -----------------------------------------------------------


def check(podman_only: bool = False, plan: Plan | None = None) -> None:
    """Raise LabNetworkError, naming every problem, unless the lab is safe to talk to."""
    problems = check_podman(podman_pins(), read_podman())
    problems += check_limits(container_nofile(), resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    if not problems and not podman_only:
        plan = plan or load_plan()
        problems = check_network(plan, read_network(plan))
    if problems:
        raise LabNetworkError("the lab's network is not safe to use:\n  - " + "\n  - ".join(problems))


def require(podman_only: bool = False) -> None:
    """For the benchmarks: stop the program unless the lab's network is safe."""
    try:
        check(podman_only)
    except LabNetworkError as exc:
        sys.exit(f"lab network: {exc}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_check = sub.add_parser("check", help="stop unless lab traffic stays on this machine")
    p_check.add_argument("--podman-only", action="store_true", help="only podman's pinned settings")
    sub.add_parser("facts", help="print what podman and the host report, as JSON")
    sub.add_parser("define", help="write the lab networks' definitions")
    p_guard = sub.add_parser("guard", help="add or remove the guard routes")
    p_guard.add_argument("state", choices=("up", "down"))
    sub.add_parser("legacy", help="remove an older lab from podman's default storage")
    args = parser.parse_args(argv)
    try:
        plan = load_plan()
        if args.command == "check":
            check(args.podman_only, plan)
            bridges = ", ".join(f"{s.bridge} {s.gateway}" for s in plan.segments)
            scope = "podman's settings" if args.podman_only else f"every segment through its own bridge ({bridges})"
            print(f"lab network: {scope} as pinned")
        elif args.command == "facts":
            print(json.dumps({"podman": read_podman(), "segments": read_network(plan)}, indent=1))
        elif args.command == "define":
            print(json.dumps({"changed": define_networks(plan)}))
        elif args.command == "guard":
            print(json.dumps({"changed": guard(plan, args.state == "up")}))
        else:
            removed = legacy_cleanup(plan)
            print(json.dumps({"changed": any(removed.values()), **removed}))
    except LabNetworkError as exc:
        print(f"lab network: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
