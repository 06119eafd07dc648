#!/usr/bin/env python3
"""Failover benchmark for the load balancer pair, on the running lab.

For each keepalived timer profile (keepalived's stock defaults first, as the
baseline of this run) and for an idle switch and one sending traffic, it
kills the active LB's container N times and measures:

  (a) fault -> the front VIP is up on the other LB (keepalived installs it
      and sends its gratuitous ARP at that moment);
  (b) fault -> the switch's OpenFlow session is re-established through the
      new active LB (its HAProxy opens a new session to a controller).

Faults: "crash" silences every link of the active LB and SIGKILLs its
container at once, as a power loss would; "kill" only SIGKILLs it, as
`podman kill` does, and the dead container's kernel still closes its TCP
sessions, which tells the switch at once; "planned" writes the drain file.
The SIGKILL goes from this host to the container's init, timed without
podman's own latency. Probes poll from inside the lab's namespaces
(nsenter), never through `podman exec`.

Usage (after `make lab`):  make bench-failover  [TRIALS=5]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lab"))
import labnet  # the lab's network check: no lab address is used before it passes

LBS = ("lb1", "lb2")
FRONT_VIP = "198.18.2.100"
STATE_FILE = "/run/keepalived/sdn_ha.state"
DRAIN_FILE = "/etc/keepalived/sdn_ha.drain"
PROFILES = ("stock", "standard", "fast")
SETTLE = 10

# Runs in the standby LB's network namespace: the moment keepalived installs
# the VIP there (it sends its gratuitous ARP at the same time).
VIP_PROBE = (
    "end=$(( $(date +%s) + {timeout} )); "
    'while [ -z "$(ip -o -4 addr show to {vip}/32)" ]; do [ $(date +%s) -lt $end ] || exit 0; done; '
    "date +%s.%N"
)

# Runs in the new active LB's mount and network namespaces with its Python:
# the moment its HAProxy opens a new session to a controller (the backend's
# total session count goes up).
SESSION_PROBE = """
import csv, io, socket, sys, time

def sessions(field):
    s = socket.socket(socket.AF_UNIX)
    s.connect("/run/haproxy/admin.sock")
    s.sendall(b"show stat\\n")
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    rows = csv.DictReader(io.StringIO(data.decode().lstrip("# ")))
    return sum(int(r[field] or 0) for r in rows if r["pxname"] == "controllers" and r["svname"] == "BACKEND")

field, deadline = sys.argv[2], time.time() + float(sys.argv[1])
before = sessions(field)
if before and field == "scur":
    print(time.time())
while time.time() < deadline:
    try:
        if sessions(field) > before:
            print(time.time())
            break
    except OSError:
        pass
    time.sleep(0.005)
"""


def run(*argv: str, check: bool = True, capture: bool = True) -> str:
    result = subprocess.run(argv, check=check, text=True, capture_output=capture)
    return result.stdout.strip() if capture else ""


def pid_of(container: str) -> int:
    return int(run("podman", "inspect", "--format", "{{.State.Pid}}", container))


def in_netns(container: str, *argv: str, mount: bool = False) -> list[str]:
    return ["nsenter", "-t", str(pid_of(container)), "-n", *(["-m"] if mount else []), *argv]


def holds_vip(lb: str) -> bool:
    out = subprocess.run(
        in_netns(lb, "ip", "-o", "-4", "addr", "show", "to", f"{FRONT_VIP}/32"), text=True, capture_output=True
    )
    return bool(out.stdout.strip())


def vrrp_state(lb: str) -> str:
    out = subprocess.run(in_netns(lb, "cat", STATE_FILE, mount=True), text=True, capture_output=True)
    return out.stdout.strip()


def wait(predicate, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


def session_count(lb: str) -> int:
    """1 if the LB's HAProxy carries a session now."""
    out = subprocess.run(
        in_netns(lb, "python3", "-c", SESSION_PROBE, "0", "scur", mount=True), text=True, capture_output=True
    )
    return 1 if out.stdout.strip() else 0


def active_lb() -> str:
    holders = [lb for lb in LBS if holds_vip(lb)]
    if len(holders) != 1:
        raise SystemExit(f"expected one VIP holder, found {holders}")
    return holders[0]


def switch_uptime() -> int:
    out = subprocess.run(
        in_netns("sw1", "ovs-vsctl", "get", "Controller", "br0", "status:sec_since_connect", mount=True),
        text=True,
        capture_output=True,
    )
    return int(out.stdout.strip().strip('"') or 0) if out.returncode == 0 else 0


def steady(timeout: float = 60) -> str:
    """Wait until one LB is master with the switch's session, the other backup,
    and the switch has been connected for SETTLE seconds. OVS doubles its
    reconnect backoff after a session that lived only briefly, so trials a
    few seconds apart would measure OVS's backoff, not the failover."""

    def ok() -> bool:
        if switch_uptime() < SETTLE:
            return False
        try:
            active = active_lb()
        except SystemExit:
            return False
        standby = next(lb for lb in LBS if lb != active)
        return vrrp_state(standby) == "BACKUP" and session_count(active) == 1

    wait(ok, timeout, "a steady pair: one master with the session, one backup")
    return active_lb()


def ansible(*args: str) -> None:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    subprocess.run(["ansible-playbook", *args], cwd=ROOT, env=env, check=True, capture_output=True)


def apply_profile(profile: str) -> None:
    ansible(
        "site.yml", "--limit", "load_balancers", "--tags", "keepalived-configure", "-e", f"keepalived_profile={profile}"
    )
    time.sleep(2)


def traffic(on: bool) -> None:
    run("podman", "exec", "sw1", "systemctl", "stop", "sdn-ha-bench-traffic", check=False)
    if on:
        run(
            "podman",
            "exec",
            "sw1",
            "systemd-run",
            "--unit",
            "sdn-ha-bench-traffic",
            "--collect",
            "ip",
            "netns",
            "exec",
            "p1",
            "/usr/local/sbin/sdn-ha-lab-traffic",
            "--rate",
            "20",
            "--seconds",
            "1800",
        )


def session_probe(standby: str, timeout: float) -> subprocess.Popen:
    probe = subprocess.Popen(
        in_netns(standby, "python3", "-c", SESSION_PROBE, str(timeout), "stot", mount=True),
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.3)  # let it start before the fault
    return probe


def vip_probe(standby: str, timeout: float) -> subprocess.Popen:
    code = VIP_PROBE.format(timeout=int(timeout), vip=FRONT_VIP)
    return subprocess.Popen(in_netns(standby, "sh", "-c", code), stdout=subprocess.PIPE, text=True)


def finish(probe: subprocess.Popen) -> float | None:
    out, _ = probe.communicate()
    return float(out) if out.strip() else None


def trial(kind: str, timeout: float = 30.0) -> tuple[float | None, float | None]:
    """kind: crash (links cut and processes killed at once, as a power loss),
    kill (SIGKILL only, as `podman kill`: the dead LB's kernel still closes
    its TCP sessions), or planned (drain file)."""
    active = steady()
    standby = next(lb for lb in LBS if lb != active)
    session = session_probe(standby, timeout)
    vip = vip_probe(standby, timeout)
    time.sleep(0.2)
    if kind == "planned":
        # Written by a shell in the LB, which prints its own clock first.
        t0 = float(run(*in_netns(active, "sh", "-c", f"date +%s.%N; echo 1 > {DRAIN_FILE}", mount=True)))
    else:
        pid = pid_of(active)
        if kind == "crash":
            silence = "for i in $(ip -o link show | cut -d: -f2 | cut -d@ -f1); do ip link set $i down; done"
            t0 = float(run(*in_netns(active, "sh", "-c", f"date +%s.%N; {silence}")))
        else:
            t0 = time.time()
        os.kill(pid, signal.SIGKILL)
    try:
        t_vip, t_session = finish(vip), finish(session)
    finally:
        # Put the old active back as a standby, whatever happened.
        if kind == "planned":
            run(*in_netns(active, "sh", "-c", f"echo 0 > {DRAIN_FILE}", mount=True))
        else:
            run("podman", "start", active)
    wait(lambda: vrrp_state(active) == "BACKUP", 60, f"{active} to return as BACKUP")
    return (t_vip - t0 if t_vip else None), (t_session - t0 if t_session else None)


def summary(values: list[float | None]) -> dict:
    got = sorted(v for v in values if v is not None)
    if not got:
        return {"n": 0, "missed": len(values)}
    p95 = got[min(len(got) - 1, round(0.95 * (len(got) - 1)))]
    return {
        "n": len(got),
        "missed": len(values) - len(got),
        "median": statistics.median(got),
        "p95": p95,
        "min": got[0],
        "max": got[-1],
    }


def fmt(s: dict) -> str:
    if not s["n"]:
        return "no result"
    missed = f" ({s['missed']} missed)" if s["missed"] else ""
    return f"{s['median']:.3f} s (p95 {s['p95']:.3f}, {s['min']:.3f}-{s['max']:.3f}){missed}"


def stop_on_sigterm() -> None:
    """Turn SIGTERM into an exception, so the lab is put back in order."""

    def handler(signum, frame):
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def main() -> None:
    stop_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--profiles", default=",".join(PROFILES))
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    labnet.require()
    profiles = args.profiles.split(",")
    cases = [("crash", False), ("crash", True), ("kill", True), ("planned", True)]

    results: dict[str, dict] = {}
    try:
        for profile in profiles:
            print(f"== profile {profile}", flush=True)
            apply_profile(profile)
            for kind, busy in cases:
                traffic(busy)
                name = f"{profile} {kind} {'traffic' if busy else 'idle'}"
                runs = []
                for number in range(1, args.trials + 1):
                    a, b = trial(kind)
                    runs.append((a, b))
                    print(
                        f"   {name} #{number}: (a) VIP {a if a is None else f'{a:.3f}'} s, "
                        f"(b) session {b if b is None else f'{b:.3f}'} s",
                        flush=True,
                    )
                results[name] = {"a": summary([r[0] for r in runs]), "b": summary([r[1] for r in runs])}
            traffic(False)
    finally:
        traffic(False)
        apply_profile("standard")

    base = profiles[0]
    print(f"\n{'case':36} {'(a) VIP moved: median (p95, range)':44} {'(b) session back':44} ratio(a) vs {base}")
    for name, r in results.items():
        baseline = results.get(name.replace(name.split()[0], base, 1), {}).get("a", {})
        ratio = f"{r['a']['median'] / baseline['median']:.2f}x" if r["a"].get("n") and baseline.get("n") else "-"
        print(f"{name:36} {fmt(r['a']):44} {fmt(r['b']):44} {ratio}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
