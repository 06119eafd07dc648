"""The running lab, for the benchmarks that drive it (after `make lab`).

Its constants come from where the lab and the roles define them: the lab
inventory (inventories/lab) and the roles' defaults, read as YAML once. No
address, path or port of the lab is typed here. Access goes from this host
straight into the containers' namespaces (nsenter), never through the lab's
network unless the benchmark is about that network, and never before the
lab's network check (lab/labnet.py) has passed: call require() first.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import ROOT

INVENTORY = ROOT / "inventories" / "lab"


def _yaml(path: Path) -> dict:
    import labnet  # the host's Python (the venv, with PyYAML); never needed inside a container

    return labnet.read_yaml(path)


def role_default(role: str, name: str, where: str = "defaults"):
    """A role's default (or, with where="vars", its fixed variable), which
    must be a plain value: a templated one depends on the inventory."""
    value = _yaml(ROOT / "roles" / role / where / "main.yml")[name]
    if isinstance(value, str) and "{{" in value:
        raise ValueError(f"roles/{role}/{where}/main.yml: {name} is templated ({value!r}); read it from a lab host")
    return value


@dataclass(frozen=True)
class Host:
    name: str
    address: str  # where Ansible reaches it (ansible_host)
    addresses: dict  # segment -> address/prefix (sdn_ha_addresses)
    role: str | None  # a controller's sdn_ha_controller_role
    ports: list[str]  # a switch's data ports (sdn_ha_switch_ports), each a network namespace in the lab


@dataclass(frozen=True)
class Lab:
    groups: dict[str, list[str]]
    hosts: dict[str, Host]
    shared: dict  # group_vars/all

    @property
    def lbs(self) -> tuple[str, ...]:
        return tuple(self.groups["load_balancers"])

    @property
    def switch(self) -> Host:
        """The first switch host: the emulators and the traffic run in its namespaces."""
        return self.hosts[self.groups["switches"][0]]

    @property
    def master(self) -> Host:
        return next(h for h in self.controllers if h.role == "master")

    @property
    def backups(self) -> dict[str, str]:
        """Each backup controller's name and address."""
        return {h.name: h.address for h in self.controllers if h.role == "backup"}

    @property
    def controllers(self) -> list[Host]:
        return [self.hosts[name] for name in self.groups["controllers"]]

    @property
    def front_vip(self) -> str:
        return str(self.shared["sdn_ha_front_vip"])

    @property
    def openflow_port(self) -> int:
        return int((self.shared.get("sdn_ha_openflow_ports") or [6653])[0])

    @property
    def segments(self) -> dict[str, str]:
        return self.shared["sdn_ha_segments"]

    @property
    def sync_segment(self) -> str:
        """The subnet of the LBs' sync segment (sdn_ha_sync_segment names it)."""
        return self.segments[self.shared.get("sdn_ha_sync_segment", "sync")]

    @property
    def bench_dpid(self) -> int:
        """The emulated datapath `bench` the lab's Faucet serves, bound to the switch host's address."""
        return int(self.shared["controller_extra_datapaths"]["bench"]["dp_id"])


@functools.cache
def lab() -> Lab:
    """The lab as its inventory describes it."""
    groups = {name: list((group or {}).get("hosts") or {}) for name, group in _inventory_groups().items()}
    shared: dict = {}
    for path in sorted((INVENTORY / "group_vars" / "all").glob("*.yml")):
        shared.update(_yaml(path))
    hosts = {}
    for name in {h for members in groups.values() for h in members}:
        found = [INVENTORY / "host_vars" / f"{name}.yml", INVENTORY / "host_vars" / name / "main.yml"]
        hv = next((_yaml(p) for p in found if p.exists()), {})
        role = hv.get("sdn_ha_controller_role")
        ports = [port["name"] for port in hv.get("sdn_ha_switch_ports") or []]
        hosts[name] = Host(name, str(hv["ansible_host"]), hv.get("sdn_ha_addresses") or {}, role, ports)
    return Lab(groups, hosts, shared)


def _inventory_groups() -> dict:
    return _yaml(INVENTORY / "hosts.yml")["all"]["children"]


# What the benchmarks look at inside the lab's hosts, from the roles' defaults
# (the lab overrides none of them).
STATE_FILE = role_default("keepalived", "keepalived_state_file")
DRAIN_FILE = role_default("keepalived", "keepalived_drain_file")
NAT_ASSIGNMENT = f"{role_default('nat', 'nat_state_dir')}/assignment"  # the prober writes it there
NAT_TABLE = role_default("nat", "nat_table")
MASTER_METRICS = f"http://127.0.0.1:{role_default('controller', 'controller_prometheus_port')}/metrics"


def unit(process: str) -> str:
    """The systemd unit of a process on the LBs' path (haproxy, sdn_ha_mirror,
    nat_prober, conntrackd), as the data_path lookup names it."""
    from ansible_collections.sdn_ha.control_plane.plugins.plugin_utils.topology import ON_PATH

    return ON_PATH[process]["unit"]


# -- access ---------------------------------------------------------------------
def require() -> None:
    """Stop unless the lab's network is the pinned, host-only one."""
    import labnet

    labnet.require()


def run(*argv: str, check: bool = True, capture: bool = True) -> str:
    """Run a command; its stripped output (nothing when not captured)."""
    result = subprocess.run(argv, check=check, text=True, capture_output=capture)
    return result.stdout.strip() if capture else ""


def pid_of(container: str) -> int:
    return int(run("podman", "inspect", "--format", "{{.State.Pid}}", container))


def ask_emulator(container: str, socket_path: str, request: dict) -> dict:
    """One request to a switch emulator's control socket inside a container
    (socket_path relative to its root, as this host sees it); its answer."""
    import json
    import socket

    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(30)
        sock.connect(f"/proc/{pid_of(container)}/root/{socket_path}")
        sock.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def in_netns(container: str, *argv: str, mount: bool = False) -> list[str]:
    """argv run in a container's network namespace (and its mount namespace:
    its files and programs)."""
    return ["nsenter", "-t", str(pid_of(container)), "-n", *(["-m"] if mount else []), *argv]


def wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


def holds_vip(lb: str) -> bool:
    out = subprocess.run(
        in_netns(lb, "ip", "-o", "-4", "addr", "show", "to", f"{lab().front_vip}/32"), text=True, capture_output=True
    )
    return bool(out.stdout.strip())


def vrrp_state(lb: str) -> str:
    out = subprocess.run(in_netns(lb, "cat", STATE_FILE, mount=True), text=True, capture_output=True)
    return out.stdout.strip()


def active_lb() -> str:
    holders = [lb for lb in lab().lbs if holds_vip(lb)]
    if len(holders) != 1:
        raise SystemExit(f"expected one VIP holder, found {holders}")
    return holders[0]


def standby_of(active: str) -> str:
    return next(lb for lb in lab().lbs if lb != active)


def settle() -> str:
    """Both LBs up, one master; returns the active one."""
    wait(lambda: sorted(vrrp_state(lb) for lb in lab().lbs) == ["BACKUP", "MASTER"], 90, "one MASTER and one BACKUP")
    time.sleep(3)
    return active_lb()


def playbook(*args: str, quiet: bool = True) -> None:
    """ansible-playbook from the repository: quiet, with the tail of its
    output when it fails, or its output as it runs."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    argv = ["ansible-playbook", *args]
    done = subprocess.run(argv, cwd=ROOT, env=env, text=True, capture_output=quiet, check=False)
    if done.returncode:
        if quiet:
            print(done.stdout[-3000:], done.stderr[-2000:], file=sys.stderr)
        raise subprocess.CalledProcessError(done.returncode, argv)


def fleet(state: str) -> None:
    """The lab's emulated switch fleet (lab/emulator.yml) started or stopped."""
    print(f"the lab's emulated fleet: {state}", file=sys.stderr, flush=True)
    playbook("lab/emulator.yml", "-e", f"emulator_state={state}", quiet=False)


def converge(mode: str) -> None:
    """site.yml in `mode`, once both LBs are back (the last trial may have
    restarted one), with one more try when a host was not reachable yet."""
    settle()
    print(f"converging the lab in {mode} mode ...", file=sys.stderr, flush=True)
    for attempt in (1, 2):
        try:
            playbook("site.yml", "-e", f"sdn_ha_mode={mode}", quiet=False)
            return
        except subprocess.CalledProcessError:
            if attempt == 2:
                raise
            time.sleep(15)


def converge_back() -> None:
    """The lab back in the inventory's mode, after the results are printed:
    a failure here is reported, not raised."""
    mode = lab().shared.get("sdn_ha_mode", "proxy")
    try:
        converge(mode)
    except Exception as exc:
        print(f"converging the lab back to {mode} mode failed ({exc}); run site.yml again", file=sys.stderr)


def sigkill(container: str) -> float:
    """SIGKILL to a container's init, as `podman kill` sends it, timed here
    without podman's own latency; the time of the fault."""
    pid = pid_of(container)
    fault = time.time()
    os.kill(pid, signal.SIGKILL)
    return fault


def power_loss(container: str) -> float:
    """A container dies as a host does when it loses power: nothing in it
    reacts, and nothing leaves it. Frozen first (`podman pause`), so that no
    process sees its links go down (keepalived would resign over a link
    still up, and the standby would take over at once); then every link is
    set down and its init SIGKILLed, which takes effect when it is thawed,
    with no link left to send on. The fault's time is when the freeze has
    taken effect (`podman pause` has returned)."""
    pid = pid_of(container)
    run("podman", "pause", container)
    fault = time.time()
    silence = "for i in $(ip -o link show | cut -d: -f2 | cut -d@ -f1); do ip link set $i down; done"
    run(*in_netns(container, "sh", "-c", silence))
    os.kill(pid, signal.SIGKILL)
    run("podman", "unpause", container)
    return fault


def stop_on_sigterm() -> None:
    """Turn SIGTERM into an exception, so the lab is put back in order."""

    def handler(signum, frame):
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, handler)


# -- HAProxy on a load balancer ---------------------------------------------------
HAPROXY_SOCKET = role_default("haproxy", "haproxy_stats_socket")
HAPROXY_BACKEND = "controllers"  # the name roles/haproxy/templates/haproxy.cfg.j2 gives the pool


def haproxy_program(main: str) -> str:
    """Python source for an LB's own Python (`python3 -c`): the collection's
    HAProxy stats code (plugins/module_utils/haproxy.py), then `main`, which
    can use query(), parse_sessions(), SOCKET and BACKEND."""
    library = (ROOT / "plugins" / "module_utils" / "haproxy.py").read_text()
    return f"{library}\nSOCKET, BACKEND = {HAPROXY_SOCKET!r}, {HAPROXY_BACKEND!r}\n{main}"


# Runs in an LB's mount and network namespaces with its Python. argv: a
# timeout, `now` or `new`, and a switch's address. `now`: prints the time if
# HAProxy carries a session of that switch. `new`: the moment it first
# carries one it did not carry at the start (on the new active LB: the
# switch served again). Other switches' sessions are not counted.
SESSION_PROBE = haproxy_program("""
import sys, time

def ports(source):
    return {s["source_port"] for s in parse_sessions(query(SOCKET, "show sess"), BACKEND) if s["source"] == source}

deadline, mode, source = time.time() + float(sys.argv[1]), sys.argv[2], sys.argv[3]
before = ports(source)
if before and mode == "now":
    print(time.time())
while mode == "new" and time.time() < deadline:
    try:
        if ports(source) - before:
            print(time.time())
            break
    except OSError:
        pass
    time.sleep(0.005)
""")


def session_count(lb: str) -> int:
    """1 if the LB's HAProxy carries a session of the switch host now."""
    out = subprocess.run(
        in_netns(lb, "python3", "-c", SESSION_PROBE, "0", "now", switch_address(), mount=True),
        text=True,
        capture_output=True,
    )
    return 1 if out.stdout.strip() else 0


def switch_address() -> str:
    """The switch host's own address on the switch segment."""
    return lab().switch.addresses["switch"].split("/", 1)[0]


def switch_uptime() -> int:
    """Seconds the switch host's bridge has been connected to its controller (0: not connected)."""
    out = subprocess.run(
        in_netns(lab().switch.name, "ovs-vsctl", "get", "Controller", "br0", "status:sec_since_connect", mount=True),
        text=True,
        capture_output=True,
    )
    return int(out.stdout.strip().strip('"') or 0) if out.returncode == 0 else 0


def steady(connected_for: float = 10, timeout: float = 60) -> str:
    """Wait until one LB is master with the switch's session, the other
    backup, and the switch has been connected for `connected_for` seconds;
    returns the active LB. OVS doubles its reconnect backoff after a session
    that lived only briefly, so trials a few seconds apart would measure
    OVS's backoff, not the failover."""

    def ok() -> bool:
        if switch_uptime() < connected_for:
            return False
        try:
            active = active_lb()
        except SystemExit:
            return False
        return vrrp_state(standby_of(active)) == "BACKUP" and session_count(active) == 1

    wait(ok, timeout, "a steady pair: one master with the session, one backup")
    return active_lb()


def apply_profile(profile: str) -> None:
    """The LBs' keepalived with another timer profile (keepalived_profile)."""
    playbook(
        "site.yml", "--limit", "load_balancers", "--tags", "keepalived-configure", "-e", f"keepalived_profile={profile}"
    )
    time.sleep(2)
