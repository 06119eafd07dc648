#!/usr/bin/env python3
"""A fleet of N switches on the running lab: how every cost grows with N.

For each mode and each N, the lab is converged with a fleet of N switches on
the fleet segment (Faucet's config holds every datapath), and the fleet runs
on the lab's rack host (lab/fleet.yml): from N = 50 on, 10 of them are real
Open vSwitch switches, each in a network namespace of its own; the others
are emulated (sdn_ha_mirror.emulator), with OVS's reconnect rules. Then,
TRIALS times:

  connect    the emulator starts all its switches at once: from its start to
             each switch's first controller write (a completed session),
             measured at the switch; p50 and p100 over the switches
  LB killed  SIGKILL to the active LB's container: from the kill to each
             switch's first ECHO_REQUEST answered on a working session,
             measured at the switch; p50, p100, and the sessions lost
             (proxy mode loses all N; NAT mode must lose none); and until
             the master has every datapath again (its paced catch-up)
  backup     SIGKILL to a backup controller's container: from the kill to
             the last of its switches served again by another backup
  spread     the share of the fleet on the most loaded backup (Faucet's
             dp_status on each backup)
  sidecar    the sidecar's RSS growth from no fleet to N sessions with the
             master's shadow sessions up, divided by N (first trial)
  CPU        CPU-seconds a minute divided by N, for the sidecar, the master's
             and each backup's Faucet, over a steady window
  runs       site.yml re-run on the converged lab, once per mode and N

Usage (after `make lab`):  make bench-fleet  [NS=1,50,200,500] [MODES=proxy,nat] [TRIALS=3]
The results: benchmarks/results/fleet-MODE.json; `python3 benchmarks/fleet.py --report` prints them again.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from benchlib import results
from benchlib.lab import (
    NAT_ASSIGNMENT,
    active_lb,
    ask_emulator,
    converge_back,
    haproxy_program,
    in_netns,
    lab,
    pid_of,
    playbook,
    require,
    run,
    settle,
    sigkill,
    stop_on_sigterm,
    wait,
)
from benchlib.stats import percentile, ratio, spread

FLEET_SEGMENT = "fleet"
RACK = "fleet1"  # the lab's rack host (inventories/lab: group lab_fleet)
EMULATOR_SOCKET = "run/sdn-ha-fleet-emulator.sock"  # lab/fleet.yml's emulator unit, under the rack's root
OVS_SWITCHES = 10  # real Open vSwitch switches in every fleet of N >= 50
OVS_PROBE = 5  # seconds: their inactivity probe (OVS's default, which lab/fleet-ovs.sh keeps)
ECHO_INTERVAL = 0.1  # seconds between a switch's echoes until one is answered
WATCH_INTERVAL = 1.0  # seconds between each switch's echoes while one is added (each keeps its longest wait;
# over hundreds of switches with random phases, one echo starts near any stall's start)
CPU_WINDOW = 30.0  # seconds of steady state per CPU sample
FLEET_VARS = Path(os.environ.get("SDN_HA_CACHE", Path.home() / ".cache" / "sdn_ha")) / "fleet.json"  # -e @file


def fleet_vars(n: int) -> dict:
    """sdn_ha_switch_fleet for N switches on the fleet segment: OVS switches
    from .20, emulated ones from .100."""
    import netaddr

    net = netaddr.IPNetwork(lab().segments[FLEET_SEGMENT])
    ovs = OVS_SWITCHES if n >= 50 else 0
    entries = []
    if ovs:
        entries.append(
            {"name": "ovs", "addresses": f"{net[20]}-{net[20 + ovs - 1]}", "datapath_ids": "0x2001", "segment": "fleet"}
        )
    emulated = n - ovs
    entries.append(
        {
            "name": "fleet",
            "addresses": f"{net[100]}-{net[100 + emulated - 1]}",
            "datapath_ids": "0x3001",
            "segment": FLEET_SEGMENT,
        }
    )
    return {"sdn_ha_switch_fleet": entries}


def fleet_names(n: int) -> set[str]:
    """The datapath names of a fleet of N (fleet_vars): the controllers' dp_status labels."""
    ovs = OVS_SWITCHES if n >= 50 else 0
    return {f"fleet-{i}" for i in range(1, n - ovs + 1)} | {f"ovs-{i}" for i in range(1, ovs + 1)}


# -- the rack -------------------------------------------------------------------
def emulator(request: dict) -> dict:
    return ask_emulator(RACK, EMULATOR_SOCKET, request)


def switches() -> dict[str, dict]:
    return {s["address"]: s for s in emulator({"cmd": "status"})["switches"]}


def ovs_status() -> dict[str, dict]:
    """Each real OVS switch's controller connection: is_connected and status."""
    names = run("podman", "exec", RACK, "ip", "netns", "list").split()
    found = {}
    for name in sorted(n.removeprefix("sdnha-") for n in names if n.startswith("sdnha-ovs-")):
        out = run("podman", "exec", RACK, "sdn-ha-lab-fleet-ovs", "status", name, check=False)
        try:
            row = json.loads(out)["data"][0]
        except (ValueError, KeyError, IndexError):
            found[name] = {"connected": False}
            continue
        status = dict(row[1][1]) if row[1][0] == "map" else {}
        found[name] = {"connected": row[0], **status}
    return found


def ovs_reconnected(fault: float, timeout: float = 60.0) -> int:
    """How many real OVS switches connected again after the fault (their
    session is younger than the time since), counted once each is connected
    and long enough after the fault for OVS to find a dead session by its
    inactivity probe (5 s idle, 5 s more for the answer)."""
    settle_after = fault + 2 * OVS_PROBE + 1
    while True:
        found = ovs_status()
        now = time.time()
        if (now > settle_after and all(o.get("connected") for o in found.values())) or now > fault + timeout:
            break
        time.sleep(0.5)
    since = time.time() - fault
    return sum(1 for o in found.values() if not o.get("connected") or int(o.get("sec_since_connect", 0)) < since - 1)


def fleet(state: str, n: int) -> None:
    playbook("lab/fleet.yml", "-e", f"@{FLEET_VARS}", "-e", f"fleet_state={state}")


def restart_emulator() -> float:
    """All emulated switches stop, then start at once; the emulator's start."""
    run("podman", "exec", RACK, "systemctl", "stop", "sdn-ha-fleet-emulator", check=False)
    time.sleep(2)
    fleet("started", 0)
    return emulator({"cmd": "status"})["started_at"]


# -- the controllers --------------------------------------------------------------
def metrics(host: str) -> str:
    from benchlib.lab import MASTER_METRICS

    return run(
        *in_netns(
            host, "python3", "-c", f"import urllib.request as u;print(u.urlopen({MASTER_METRICS!r}).read().decode())"
        ),
        check=False,
    )


def datapaths_up(host: str, names: set[str]) -> set[str]:
    """The fleet's datapaths a controller has up (the collection's own reading of Faucet's dp_status)."""
    from ansible_collections.sdn_ha.control_plane.plugins.plugin_utils.status import datapaths_up as up

    return set(up(metrics(host))) & names


# Prints the address of each server of the pool that HAProxy has UP.
SERVERS_UP = haproxy_program("""
for server in parse_servers(query(SOCKET, "show stat"), BACKEND):
    if server["status"].startswith("UP"):
        print(server["address"].rsplit(":", 1)[0])
""")


def pool_whole(mode: str, n: int) -> bool:
    """The active LB sends new sessions to every backup again: HAProxy has
    each UP (proxy mode), or the NAT prober's assignment names each (NAT
    mode, with two switches or more). A backup started again rises only
    after its checks; a fleet that connects before then lands on the other."""
    lb, backups = active_lb(), set(lab().backups.values())
    if mode == "proxy":
        return backups <= set(run(*in_netns(lb, "python3", "-c", SERVERS_UP, mount=True), check=False).split())
    if n < 2:
        return True
    lines = run("podman", "exec", lb, "cat", NAT_ASSIGNMENT, check=False).splitlines()
    return backups <= {line.split()[1].rsplit(":", 1)[0] for line in lines if len(line.split()) == 2}


def main_pid(host: str, unit: str) -> int:
    return int(run("podman", "exec", host, "systemctl", "show", "-p", "MainPID", "--value", unit) or 0)


def cpu_seconds(host: str, pid: int) -> float:
    fields = run("podman", "exec", host, "cat", f"/proc/{pid}/stat").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in clock ticks of 1/100 s


def rss_kib(host: str, pid: int) -> int:
    for line in run("podman", "exec", host, "cat", f"/proc/{pid}/status").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def says_hello(address: str) -> bool:
    try:
        with socket.create_connection((address, lab().openflow_port), timeout=1.0) as sock:
            sock.settimeout(1.0)
            return sock.recv(8)[1:2] == b"\x00"
    except OSError:
        return False


# -- one trial --------------------------------------------------------------------
def kill(container: str) -> float:
    """SIGKILL to a container: the time of the fault. The emulator counts
    lost sessions from just before it, and its switches start to echo once
    every process of the container is gone (the kernel kills them after the
    init, and until then they still answer)."""
    pid = pid_of(container)
    emulator({"cmd": "mark"})
    fault = sigkill(container)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            break
        if state in ("Z", "X"):
            break
        time.sleep(0.002)
    emulator({"cmd": "probe", "echo_interval": ECHO_INTERVAL})
    return fault


def served_after(start: float, addresses: list[str], timeout: float = 60.0) -> dict[str, dict]:
    """Wait until every switch in addresses has an answered echo since the
    mark (or the timeout); the emulator's status of each."""
    deadline = time.time() + timeout
    while True:
        now = switches()
        if all(now[a]["served_at"] for a in addresses) or time.time() > deadline:
            return now
        time.sleep(0.5)


def steady(names: set[str]) -> None:
    """Every OVS switch connected, the master has every datapath (its
    shadow sessions), and each switch is on a backup."""
    wait(lambda: all(o.get("connected") for o in ovs_status().values()), 60, "every OVS switch connected")
    wait(lambda: len(datapaths_up(lab().master.name, names)) == len(names), 120, "the master's shadow sessions")
    wait(
        lambda: sum(len(datapaths_up(b, names)) for b in lab().backups) == len(names), 60, "the backups carry the fleet"
    )


def lb_failover(active: str, names: set[str], addresses: list[str], master: bool = True) -> dict:
    """The active LB killed: when each emulated switch (addresses) was
    served again and the sessions lost, when the master had every datapath
    again (unless master is False), and the OVS switches that reconnected;
    then the LB started again and VRRP settled."""
    result: dict = {}
    killed = kill(active)
    after = served_after(killed, addresses)
    result["lb_served"] = sorted((s["served_at"] or float("nan")) - killed for s in after.values())
    result["lb_resets"] = sum(s["drops"] for s in after.values())
    # The master's catch-up, paced behind the backups (mirror_master_connect_rate):
    # from the kill until it has every datapath again (read every second; at
    # N = 500 each read takes the master's thread 0.5 s, which is off the path).
    result["master_caught_up"] = None
    deadline = killed + 120
    while master and time.time() < deadline:
        if len(datapaths_up(lab().master.name, names)) == len(names):
            result["master_caught_up"] = time.time() - killed
            break
        time.sleep(1.0)
    result["ovs_resets"] = ovs_reconnected(killed)
    run("podman", "start", active)
    settle()
    return result


def trial(mode: str, n: int, index: int, names: set[str], first: bool, rss_before: int | None) -> dict:
    result: dict = {}
    started = restart_emulator()
    wait(lambda: all(s["configured_at"] for s in switches().values()), 120, "every emulated switch configured")
    emulated = switches()
    result["connect"] = sorted(s["configured_at"] - started for s in emulated.values())
    steady(names)
    result["spread"] = {b: len(datapaths_up(b, names)) for b in lab().backups}
    active = result["lb"] = active_lb()
    sidecar = main_pid(active, "sdn-ha-mirror")
    if first and rss_before is not None:
        result["rss_per_switch_kib"] = (rss_kib(active, sidecar) - rss_before) / n
    # CPU over a steady window.
    procs = {
        "sidecar": (active, sidecar),
        lab().master.name: (lab().master.name, main_pid(lab().master.name, "faucet")),
    }
    procs.update({b: (b, main_pid(b, "faucet")) for b in lab().backups})
    before = {k: cpu_seconds(h, p) for k, (h, p) in procs.items()}
    time.sleep(CPU_WINDOW)
    result["cpu_per_minute"] = {k: (cpu_seconds(h, p) - before[k]) * 60 / CPU_WINDOW for k, (h, p) in procs.items()}
    result.update(lb_failover(active, names, list(emulated)))
    # A backup dies: the one carrying most of the fleet since the LB failover's reconnect storm.
    wait(
        lambda: sum(len(datapaths_up(b, names)) for b in lab().backups) == len(names), 60, "the backups carry the fleet"
    )
    carried_by = {b: datapaths_up(b, names) for b in lab().backups}
    result["spread_after_failover"] = {b: len(c) for b, c in carried_by.items()}
    victim = max(carried_by, key=lambda b: (len(carried_by[b]), b))
    carried = carried_by[victim]
    address_of = {s["name"]: s["address"] for s in fleet_switches(n)}
    killed = kill(victim)
    after = served_after(killed, list(emulated))
    moved = [after[address_of[name]] for name in carried if name in address_of]  # the emulated ones
    result["backup"] = victim
    result["backup_carried"] = len(carried)
    result["backup_resets"] = sum(s["drops"] for s in after.values())
    result["backup_served"] = max(((s["served_at"] or float("nan")) - killed for s in moved), default=None)
    # How its switches got back: each one's time, and the OVS backoff it ended
    # on (1: its first attempt worked; 2 and 4: one and two attempts failed)
    # and its last error, counted.
    result["backup_served_each"] = sorted(round((s["served_at"] or float("nan")) - killed, 3) for s in moved)
    result["backup_backoffs"] = dict(Counter(str(s["backoff"]) for s in moved))
    result["backup_errors"] = dict(Counter(str(s["last_error"]) for s in moved))
    result["backup_unserved"] = sum(1 for s in after.values() if not s["served_at"])
    run("podman", "start", victim)
    wait(lambda: says_hello(lab().backups[victim]), 180, f"{victim}'s Faucet to say HELLO")
    reachable()
    # The next trial's fleet starts on a whole pool (else it all lands on the other backup).
    wait(lambda: pool_whole(mode, n), 60, "the active LB's pool has every backup again")
    time.sleep(5)
    print(f"{mode} N={n} trial {index + 1}: " + summary_line(result), file=sys.stderr, flush=True)
    return result


def summary_line(r: dict) -> str:
    connect = r["connect"]
    served = [v for v in r["lb_served"] if v == v]
    share = max(r["spread"].values()) / max(sum(r["spread"].values()), 1)
    nan = float("nan")
    return (
        f"connect p50 {percentile(connect, 0.5):.2f} p100 {connect[-1]:.2f} s; "
        f"LB kill p50 {percentile(served, 0.5) if served else nan:.2f} p100 {max(served, default=nan):.2f} s, "
        f"{r['lb_resets']} resets ({len(r['lb_served']) - len(served)} unserved); "
        f"backup {r['backup']} ({r['backup_carried']} switches): all served {r['backup_served'] or nan:.2f} s, "
        f"{r['backup_resets']} resets; "
        f"spread max {share:.0%}"
    )


def add_one(mode: str, n: int) -> dict:
    """One more switch in the running fleet: site.yml gives Faucet its
    datapath (a reload), then a second emulator starts it. How long Faucet's
    reload kept the switches waiting, measured at the switches: each echoes
    every WATCH_INTERVAL through the run and keeps its slowest round trip
    (asking Faucet itself would load the thread that reloads: one scrape of
    its metrics at N = 500 is 5 MB and 0.5 s). And whether any other switch
    was cold started: Faucet's cold-start count, the flows it sent, the
    sessions lost."""
    cold = {b: cold_starts(b) for b in lab().backups}
    writes = {a: s["writes"] for a, s in switches().items()}
    emulator({"cmd": "mark"})
    emulator({"cmd": "watch", "echo_interval": WATCH_INTERVAL})
    FLEET_VARS.write_text(json.dumps(fleet_vars(n + 1)))
    site = timed_site(mode)
    emulator({"cmd": "watch", "echo_interval": 0})
    waited = sorted(s["slowest_echo"] for s in switches().values() if s["slowest_echo"] is not None)
    new = next(s for s in fleet_switches(n + 1) if s["address"] not in writes)
    extra = json.dumps([new])
    playbook(
        "lab/emulator.yml",
        "-e",
        f"emulator_host={RACK}",
        "-e",
        "emulator_unit=sdn-ha-fleet-extra",
        "-e",
        f'{{"emulator_fleet": {extra}}}',
    )
    after = switches()
    result = {
        "site": site,
        "reload": waited[-1] if waited else None,
        "reload_p50": percentile(waited, 0.5) if waited else None,
        "cold_starts": sum(cold_starts(b) - cold[b] for b in lab().backups),
        "drops": sum(s["drops"] for s in after.values()),
        "writes_to_others": sum(after[a]["writes"] - w for a, w in writes.items()),
    }
    run("podman", "exec", RACK, "systemctl", "stop", "sdn-ha-fleet-extra", check=False)
    FLEET_VARS.write_text(json.dumps(fleet_vars(n)))
    print(f"{mode} N={n} add one: {result}", file=sys.stderr, flush=True)
    return result


def fleet_switches(n: int) -> list[dict]:
    from ansible_collections.sdn_ha.control_plane.plugins.module_utils.topology import fleet_switches as expand

    return [s for s in expand(fleet_vars(n)["sdn_ha_switch_fleet"]) if not s["name"].startswith("ovs-")]


def cold_starts(host: str) -> float:
    total = 0.0
    for line in metrics(host).splitlines():
        if line.startswith("faucet_config_reload_cold_total"):
            total += float(line.split()[-1])
    return total


def reachable(timeout: float = 120.0) -> None:
    """Every lab host answers Ansible again (after a container was killed
    and started, its SSH comes back last)."""
    deadline = time.time() + timeout
    while subprocess.run(["ansible", "all", "-m", "ansible.builtin.ping"], capture_output=True).returncode:
        if time.time() > deadline:
            raise SystemExit("a lab host did not answer Ansible again")
        time.sleep(3)


def converge_with_fleet(mode: str, n: int, extra: dict | None = None) -> None:
    """The lab converged in mode with a fleet of N in Faucet's config (the
    fleet itself stopped until fleet("started", n)), and extra variables."""
    FLEET_VARS.write_text(json.dumps(fleet_vars(n) | (extra or {})))
    fleet("stopped", n)
    settle()
    print(f"converging the lab in {mode} mode with a fleet of {n} ...", file=sys.stderr, flush=True)
    playbook("site.yml", "-e", f"sdn_ha_mode={mode}", "-e", f"@{FLEET_VARS}")
    settle()


def put_back() -> None:
    """The fleet stopped and the lab back in the inventory's mode, whatever
    failed before."""
    try:
        fleet("stopped", 0)
    except subprocess.CalledProcessError:
        print("stopping the fleet failed; run lab/fleet.yml -e fleet_state=stopped", file=sys.stderr)
    FLEET_VARS.unlink(missing_ok=True)
    reachable()
    converge_back()


def timed_site(mode: str) -> float:
    start = time.monotonic()
    playbook("site.yml", "-e", f"sdn_ha_mode={mode}", "-e", f"@{FLEET_VARS}")
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ns", default="1,50,200,500", help="fleet sizes, comma-separated")
    parser.add_argument("--modes", default="proxy,nat")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--report", action="store_true", help="print the report of the saved results again")
    args = parser.parse_args()
    if args.report:
        report(saved())
        return 0
    require()
    stop_on_sigterm()
    data: dict = {"trials": args.trials, "runs": {}}
    # One file a mode (fleet-proxy.json, fleet-nat.json), one entry an N in
    # it, each with the revision that measured it: a run replaces the
    # entries of its modes and Ns and keeps the others.
    try:
        for mode in args.modes.split(","):
            for n in (int(x) for x in args.ns.split(",")):
                names = fleet_names(n)
                converge_with_fleet(mode, n)
                rerun = timed_site(mode)
                active = settle()
                rss_before = rss_kib(active, main_pid(active, "sdn-ha-mirror"))
                fleet("started", n)
                trials = [trial(mode, n, i, names, i == 0, rss_before) for i in range(args.trials)]
                added = add_one(mode, n)
                entry = {"revision": results.STARTED_AT, "site_rerun": rerun, "trials": trials, "add_one": added}
                data["runs"].setdefault(mode, {})[str(n)] = entry
                kept = saved_runs(mode)
                kept[str(n)] = entry
                ordered = dict(sorted(kept.items(), key=lambda item: int(item[0])))
                results.save(f"fleet-{mode}", {"trials": args.trials, "runs": {mode: ordered}}, vars(args))
    finally:
        put_back()
    report(data)
    return 0


def saved_runs(mode: str) -> dict:
    path = results.DIRECTORY / f"fleet-{mode}.json"
    return results.load(f"fleet-{mode}")["data"]["runs"].get(mode, {}) if path.exists() else {}


def saved() -> dict:
    """Every mode's saved results, as one run's data (each file's revision
    and date are in it)."""
    data: dict = {"trials": None, "runs": {}}
    for mode in ("proxy", "nat"):
        path = results.DIRECTORY / f"fleet-{mode}.json"
        if path.exists():
            record = results.load(f"fleet-{mode}")
            data["trials"] = record["data"]["trials"]
            data["runs"].update(record["data"]["runs"])
            runs = record["data"]["runs"][mode].values()
            revisions = sorted({run_.get("revision", record["revision"]) for run_ in runs})
            print(f"{mode}: {path.name}, revisions {', '.join(revisions)}, last run {record['finished']}")
    return data


def report(data: dict) -> None:
    """Markdown tables: medians over trials, with (min-max)."""

    def cells(values: list, form: str = "{:.2f}", unit: str = "") -> str:
        return spread([v for v in values if v is not None and v == v], form, unit)

    print(f"\nA fleet of N switches: {data['trials']} trials per N; median (min-max) over the trials\n")
    print(
        "| Mode | N | connect p50 | connect p100 | LB killed: served p50 | p100 | resets (OVS) |"
        " master caught up | backup killed: its switches served | most loaded backup | after the LB failover |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for mode, runs in data["runs"].items():
        for n, run_ in runs.items():
            t = run_["trials"]
            served = [[v for v in x["lb_served"] if v == v] for x in t]
            share = [max(x["spread"].values()) / max(sum(x["spread"].values()), 1) * 100 for x in t]
            after = [
                max(x["spread_after_failover"].values()) / max(int(n), 1) * 100
                for x in t
                if "spread_after_failover" in x
            ]
            row = [
                cells([percentile(x["connect"], 0.5) for x in t]),
                cells([x["connect"][-1] for x in t]),
                cells([percentile(v, 0.5) if v else None for v in served]),
                cells([max(v) if v else None for v in served]),
                f"{cells([x['lb_resets'] for x in t], '{:.0f}')} ({cells([x['ovs_resets'] for x in t], '{:.0f}')})",
                cells([x.get("master_caught_up") for x in t]),
                cells([x["backup_served"] for x in t]),
                cells(share, "{:.0f}", " %"),
                cells(after, "{:.0f}", " %"),
            ]
            print(f"| {mode} | {n} | " + " | ".join(row) + " |")
    print(
        "\n| Mode | N | sidecar KiB per switch | CPU-s a minute per switch: sidecar, master, backups |"
        " site.yml re-run | one switch added: longest wait for Faucet (its reload), cold starts, lost sessions,"
        " flows to others |"
    )
    print("|---|---|---|---|---|---|")
    for mode, runs in data["runs"].items():
        base = runs.get("1", {}).get("site_rerun")
        for n, run_ in runs.items():
            t = run_["trials"]
            cpu = {k: statistics.median(x["cpu_per_minute"][k] for x in t) / int(n) for k in t[0]["cpu_per_minute"]}
            added = run_.get("add_one") or {}
            reload, reload_p50 = added.get("reload"), added.get("reload_p50")
            row = [
                cells([x.get("rss_per_switch_kib") for x in t], "{:.1f}"),
                ", ".join(f"{k} {v:.4f}" for k, v in cpu.items()),
                f"{run_['site_rerun']:.0f} s ({ratio(run_['site_rerun'], base)} N=1)",
                (f"{reload:.2f} s (p50 {reload_p50:.2f} s), " if None not in (reload, reload_p50) else "-, ")
                + f"{added.get('cold_starts', '-')}, {added.get('drops', '-')}, {added.get('writes_to_others', '-')}",
            ]
            print(f"| {mode} | {n} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    sys.exit(main())
