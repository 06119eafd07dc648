#!/usr/bin/env python3
"""The pool with the emulated fleet, on the running lab: how the switches
spread over the backups, and how long the switches of a backup that dies take
to be served again, NAT mode against proxy mode in the same run.

The lab's 64 emulated switches (lab/emulator.yml) connect to the front VIP.
Faults, each TRIALS times, alternating the backup that dies:

  stop   Faucet stops on the backup (its TCP stack closes the sessions);
         timed from the start of `podman exec ... systemctl stop faucet`
  kill   the backup's container is SIGKILLed (nothing tells the switches);
         timed from the SIGKILL, sent from this host

Before each trial every emulated switch reconnects, so that the fault meets
the pool's own spread (about half the fleet on each backup).

For every emulated switch that opens a new session after the fault, the time
from the fault to the controller's first message on that session (the
emulator stamps it). In NAT mode the prober drops the dead backup from the
map and clears its sessions; in proxy mode HAProxy's OpenFlow health check
marks it down and shuts its sessions (`on-marked-down shutdown-sessions`).

Usage (after `make lab`):  make bench-nat-pool  [TRIALS=5]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from collections import Counter

from benchlib import results
from benchlib.lab import (
    active_lb,
    ask_emulator,
    converge,
    converge_back,
    fleet,
    lab,
    require,
    run,
    settle,
    sigkill,
    wait,
)
from benchlib.stats import ratio, spread

SOCKET = "run/sdn-ha-emulator.sock"  # lab/emulator.yml's control socket, under the switch host's root


def emulator(request: dict) -> dict:
    """Ask the emulator in sw1, through sw1's root directory as this host
    sees it; a status request's answer comes keyed by switch address."""
    reply = ask_emulator(lab().switch.name, SOCKET, request)
    return {s["address"]: s for s in reply["switches"]} if "switches" in reply else reply


def all_connected() -> bool:
    return all(s["connected"] and s["first_message_at"] for s in emulator({"cmd": "status"}).values())


def backup_spread() -> Counter:
    """NAT mode: the emulated switches' live sessions per backup, from the
    active LB's connection table (entries of sessions that ended, which the
    table may still hold, are left out: only each switch's current port)."""
    live = {(a, str(s["local_port"])) for a, s in emulator({"cmd": "status"}).items() if s["connected"]}
    names = {v: k for k, v in lab().backups.items()}
    table = run(
        "podman", "exec", active_lb(), "conntrack", "-L", "-p", "tcp", "--orig-dst", lab().front_vip, check=False
    )
    served = Counter()
    for row in table.splitlines():
        original: dict[str, str] = {}
        for key, _, value in (f.partition("=") for f in row.split() if "=" in f):
            original.setdefault(key, value)  # the first of each key: the original direction
        reply_src = row.split("src=")[2].split()[0] if row.count("src=") > 1 else ""
        if (original.get("src"), original.get("sport")) in live:
            served[names.get(reply_src, reply_src)] += 1
    return served


def says_hello(address: str) -> bool:
    """Whether the controller at address accepts and sends its OpenFlow HELLO
    within a second, as the prober's probe needs."""
    try:
        with socket.create_connection((address, lab().openflow_port), timeout=1.0) as sock:
            sock.settimeout(1.0)
            header = sock.recv(8)
    except OSError:
        return False
    return len(header) >= 2 and header[1] == 0  # type 0: HELLO


def rebalance() -> None:
    """Every emulated switch reconnects, so that each trial starts from the
    pool's own spread (established sessions never move back on their own)."""
    emulator({"cmd": "disconnect"})
    time.sleep(1.5)
    wait(all_connected, 60, "every emulated switch connected")


def trial(fault: str, victim: str) -> list[float]:
    """One fault; the seconds from it to each moved switch's first controller message."""
    rebalance()
    before = emulator({"cmd": "status"})
    if fault == "kill":
        start = sigkill(victim)
    else:
        start = time.time()
        run("podman", "exec", victim, "systemctl", "stop", "faucet")
    # Settled: every switch connected and served, and no new session for 3 s.
    last_change, seen = time.time(), None
    while time.time() - start < 40:
        now = emulator({"cmd": "status"})
        sessions = {a: s["sessions"] for a, s in now.items()}
        if sessions != seen:
            last_change, seen = time.time(), sessions
        if time.time() - last_change > 3 and all(s["connected"] and s["first_message_at"] for s in now.values()):
            break
        time.sleep(0.2)
    moved = [
        now[a]["first_message_at"] - start
        for a in now
        if now[a]["sessions"] > before[a]["sessions"] and now[a]["first_message_at"]
    ]
    if fault == "kill":
        run("podman", "start", victim)
    else:
        run("podman", "exec", victim, "systemctl", "start", "faucet")
    # A restarted container's Faucet is active long before it listens: the
    # next trial needs both backups in the pool again, or it measures the
    # wait for this one.
    wait(lambda: says_hello(lab().backups[victim]), 120, f"{victim}'s Faucet to say HELLO")
    time.sleep(5)  # the prober's or HAProxy's rise
    return moved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    require()
    fleet("started")
    moved_by_case: dict[str, list[list[float]]] = {}  # "mode fault": per trial, each moved switch's seconds
    spreads = {}
    try:
        for mode in ("proxy", "nat"):
            converge(mode)
            settle()
            if mode == "nat":
                wait(all_connected, 60, "every emulated switch connected")
                spreads[mode] = backup_spread()
            for fault in ("stop", "kill"):
                for n in range(args.trials):
                    victim = list(lab().backups)[n % len(lab().backups)]
                    moved = trial(fault, victim)
                    moved_by_case.setdefault(f"{mode} {fault}", []).append(moved)
                    times = spread(moved, "{:.3f}", " s") if moved else "none moved"
                    print(
                        f"{mode} {fault} {victim}: {len(moved)} moved, {times}",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        converge_back()
        # The fleet would otherwise stay up and skew the next benchmark.
        fleet("stopped")
    data = {"trials": args.trials, "moved": moved_by_case, "spread": {m: dict(c) for m, c in spreads.items()}}
    results.save("nat_pool", data, vars(args))
    report(data)
    return 0


def report(data: dict) -> None:
    def median_of_trials(values: list[list[float]]) -> str:
        return spread([statistics.median(t) for t in values if t], "{:.3f}", " s") if any(values) else "none moved"

    print(f"\nA backup dies: fault -> a moved switch's first controller message; {data['trials']} trials per case\n")
    print("| Mode | Fault | Switches moved per trial | Per-trial median, median (min-max) | Slowest switch, median |")
    print("|---|---|---|---|---|")
    for case, trials in data["moved"].items():
        mode, fault = case.split()
        counts = "/".join(str(len(t)) for t in trials)
        slowest = spread([max(t) for t in trials if t], "{:.3f}", " s", empty="none moved")
        print(f"| {mode} | {fault} | {counts} | {median_of_trials(trials)} | {slowest} |")
    for fault in ("stop", "kill"):
        nat = [statistics.median(t) for t in data["moved"].get(f"nat {fault}", []) if t]
        proxy = [statistics.median(t) for t in data["moved"].get(f"proxy {fault}", []) if t]
        if nat and proxy:
            print(f"{fault}: NAT mode's median {ratio(statistics.median(nat), statistics.median(proxy))} proxy mode's")
    for mode, counts in data["spread"].items():
        total = sum(counts.values()) or 1
        print(f"spread in {mode} mode: " + ", ".join(f"{k} {v} ({v / total:.0%})" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    sys.exit(main())
