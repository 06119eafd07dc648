#!/usr/bin/env python3
"""Failover benchmark for the load balancer pair, on the running lab.

For each keepalived timer profile (keepalived's stock defaults first, as the
baseline of this run) and for an idle switch and one sending traffic, it
kills the active LB's container N times and measures:

  (a) fault -> the front VIP is up on the other LB (keepalived installs it
      and sends its gratuitous ARP at that moment);
  (b) fault -> the switch's OpenFlow session is re-established through the
      new active LB (its HAProxy opens a new session to a controller).

Faults: "crash" freezes the active LB, silences every link of it and
SIGKILLs it, as a power loss would (nothing in it reacts to its links going
down, and nothing leaves it); "kill" only SIGKILLs it, as
`podman kill` does, and the dead container's kernel still closes its TCP
sessions, which tells the switch at once; "planned" writes the drain file.
The SIGKILL goes from this host to the container's init, timed without
podman's own latency. Probes poll from inside the lab's namespaces
(nsenter), never through `podman exec`.

Usage (after `make lab`):  make bench-failover  [TRIALS=5]
"""

from __future__ import annotations

import argparse
import subprocess
import time

from benchlib import results
from benchlib.lab import (
    DRAIN_FILE,
    SESSION_PROBE,
    apply_profile,
    fleet,
    in_netns,
    lab,
    power_loss,
    require,
    run,
    sigkill,
    standby_of,
    steady,
    stop_on_sigterm,
    switch_address,
    vrrp_state,
    wait,
)
from benchlib.stats import fmt, ratio, summary

PROFILES = ("stock", "standard", "fast")

# Runs in the standby LB's network namespace: the moment keepalived installs
# the VIP there (it sends its gratuitous ARP at the same time).
VIP_PROBE = (
    "end=$(( $(date +%s) + {timeout} )); "
    'while [ -z "$(ip -o -4 addr show to {vip}/32)" ]; do [ $(date +%s) -lt $end ] || exit 0; done; '
    "date +%s.%N"
)


def traffic(on: bool) -> None:
    switch = lab().switch.name
    run("podman", "exec", switch, "systemctl", "stop", "sdn-ha-bench-traffic", check=False)
    if on:
        run(
            "podman",
            "exec",
            switch,
            "systemd-run",
            "--unit",
            "sdn-ha-bench-traffic",
            "--collect",
            "ip",
            "netns",
            "exec",
            lab().switch.ports[0],
            "/usr/local/sbin/sdn-ha-lab-traffic",
            "--rate",
            "20",
            "--seconds",
            "1800",
        )


def session_probe(standby: str, timeout: float) -> subprocess.Popen:
    probe = subprocess.Popen(
        in_netns(standby, "python3", "-c", SESSION_PROBE, str(timeout), "new", switch_address(), mount=True),
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.3)  # let it start before the fault
    return probe


def vip_probe(standby: str, timeout: float) -> subprocess.Popen:
    code = VIP_PROBE.format(timeout=int(timeout), vip=lab().front_vip)
    return subprocess.Popen(in_netns(standby, "sh", "-c", code), stdout=subprocess.PIPE, text=True)


def finish(probe: subprocess.Popen) -> float | None:
    out, _ = probe.communicate()
    return float(out) if out.strip() else None


def trial(kind: str, timeout: float = 30.0) -> tuple[float | None, float | None]:
    """kind: crash (frozen, links cut and processes killed, as a power loss),
    kill (SIGKILL only, as `podman kill`: the dead LB's kernel still closes
    its TCP sessions), or planned (drain file)."""
    active = steady()
    standby = standby_of(active)
    session = session_probe(standby, timeout)
    vip = vip_probe(standby, timeout)
    time.sleep(0.2)
    if kind == "planned":
        # Written by a shell in the LB, which prints its own clock first.
        t0 = float(run(*in_netns(active, "sh", "-c", f"date +%s.%N; echo 1 > {DRAIN_FILE}", mount=True)))
    else:
        t0 = power_loss(active) if kind == "crash" else sigkill(active)
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


def report(data: dict) -> None:
    """The table: per case, (a) and (b), and (a)'s ratio to the first profile's."""
    base = data["profiles"][0]
    print(f"\n{'case':36} {'(a) VIP moved: median (p95, range)':44} {'(b) session back':44} ratio(a) vs {base}")
    for name, runs in data["cases"].items():
        a, b = summary(r[0] for r in runs), summary(r[1] for r in runs)
        baseline = summary(r[0] for r in data["cases"].get(name.replace(name.split()[0], base, 1), []))
        print(f"{name:36} {fmt(a):44} {fmt(b):44} {ratio(a.get('median'), baseline.get('median'))}")


def main() -> None:
    stop_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--profiles", default=",".join(PROFILES))
    args = parser.parse_args()
    require()
    # (b) counts any new session at the new active LB: only sw1's OVS may connect.
    fleet("stopped")
    profiles = args.profiles.split(",")
    cases = [("crash", False), ("crash", True), ("kill", True), ("planned", True)]

    # Per case, per trial: seconds from the fault to (a) and to (b); None: not within the trial.
    data: dict = {"profiles": profiles, "cases": {}}
    try:
        for profile in profiles:
            print(f"== profile {profile}", flush=True)
            apply_profile(profile)
            for kind, busy in cases:
                traffic(busy)
                name = f"{profile} {kind} {'traffic' if busy else 'idle'}"
                for number in range(1, args.trials + 1):
                    a, b = trial(kind)
                    data["cases"].setdefault(name, []).append([a, b])
                    print(
                        f"   {name} #{number}: (a) VIP {a if a is None else f'{a:.3f}'} s, "
                        f"(b) session {b if b is None else f'{b:.3f}'} s",
                        flush=True,
                    )
            traffic(False)
    finally:
        traffic(False)
        apply_profile("standard")
    results.save("failover", data, vars(args))
    report(data)


if __name__ == "__main__":
    main()
