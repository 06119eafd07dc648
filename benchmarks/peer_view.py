#!/usr/bin/env python3
"""Faucet's running peers: its own lists against sdn-ha-faucet's view.

About once a second Faucet hands each of its N datapaths' services a list
of every other running datapath; the controller role's launcher hands a
view instead (controller_peer_view). This measures what that is worth
where it matters most, on the master, which has every datapath running
(its shadow sessions):

  the lab converged with a fleet of N switches (bench-fleet's), the fleet
  started; then ROUNDS times, Faucet's own lists, then the view: the
  master's Faucet restarted with SDN_HA_FAUCET_PEER_VIEW=0 or 1 (a runtime
  drop-in), every datapath up again, 20 s more, then WINDOWS windows of
  30 s of its CPU-seconds a minute, divided by N.

It prints the median (min-max) of each and the ratio view / own, from the
same run. Results: benchmarks/results/peer_view.json.

Usage (after `make lab`):  make bench-peer-view [N=500] [MODE=nat] [ROUNDS=2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import fleet
from benchlib import results
from benchlib.lab import lab, require, run, stop_on_sigterm, wait

WINDOW = 30.0  # seconds a CPU window
WINDOWS = 3  # windows a phase
AFTER_UP = 20.0  # seconds after the master has every datapath again
DROP_IN = "/run/systemd/system/faucet.service.d/sdn-ha-bench-peer-view.conf"


def restart_master(view: bool, names: set[str]) -> int:
    """The master's Faucet restarted with the view on or off, once it has
    every datapath again; its main PID."""
    master = lab().master.name
    script = (
        f"mkdir -p {DROP_IN.rsplit('/', 1)[0]} && "
        f"printf '[Service]\\nEnvironment=SDN_HA_FAUCET_PEER_VIEW={int(view)}\\n' > {DROP_IN} && "
        "systemctl daemon-reload && systemctl restart faucet"
    )
    run("podman", "exec", master, "sh", "-c", script)
    wait(lambda: len(fleet.datapaths_up(master, names)) == len(names), 180, "the master's shadow sessions")
    time.sleep(AFTER_UP)
    return fleet.main_pid(master, "faucet")


def windows(pid: int, n: int) -> list[float]:
    master = lab().master.name
    found = []
    for _ in range(WINDOWS):
        before, start = fleet.cpu_seconds(master, pid), time.monotonic()
        time.sleep(WINDOW)
        used, took = fleet.cpu_seconds(master, pid) - before, time.monotonic() - start
        found.append(used * 60 / took / n)
    return found


def cell(values: list[float]) -> str:
    return f"{statistics.median(values):.4f} ({min(values):.4f}-{max(values):.4f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="switches in the fleet")
    parser.add_argument("--mode", default="nat", choices=("proxy", "nat"))
    parser.add_argument("--rounds", type=int, default=2, help="rounds of Faucet's own, then the view")
    args = parser.parse_args()
    require()
    stop_on_sigterm()
    n = args.n
    names = fleet.fleet_names(n)
    measured: dict[str, list[float]] = {"own": [], "view": []}
    try:
        fleet.converge_with_fleet(args.mode, n)
        fleet.fleet("started", n)
        for round_ in range(args.rounds):
            for name, view in (("own", False), ("view", True)):
                found = windows(restart_master(view, names), n)
                measured[name].extend(found)
                print(f"round {round_ + 1}, {name}: " + ", ".join(f"{v:.4f}" for v in found), file=sys.stderr)
    finally:
        restore = f"rm -f {DROP_IN}; systemctl daemon-reload; systemctl restart faucet"
        run("podman", "exec", lab().master.name, "sh", "-c", restore, check=False)
        fleet.put_back()
    ratio = statistics.median(measured["view"]) / statistics.median(measured["own"])
    results.save("peer_view", {"n": n, "mode": args.mode, "cpu_per_minute_per_switch": measured}, vars(args))
    print(f"\nThe master's Faucet, N = {n}, {args.mode} mode: CPU-s a minute per switch, median (min-max)")
    print(f"  Faucet's own lists  {cell(measured['own'])}")
    print(f"  the view            {cell(measured['view'])}   {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
