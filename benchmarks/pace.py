#!/usr/bin/env python3
"""The master's catch-up after an LB failover, paced or not: does it delay the backups?

After the active LB dies, every switch's session is opened again through
the new one: by the backups, which serve the switches, and by the sidecar's
shadow sessions to the master. The sidecar paces the shadow sessions at
mirror_master_connect_rate connects a second (100 by default); 0 opens
them as fast as the switches come. The controllers share this machine's
cores, so an unpaced master competes with the backups for them.

With the lab converged with a fleet of N switches (bench-fleet's), ROUNDS
times each of three arms, in an order that turns round each round: the
rate 0, the rate 100, and no catch-up at all (the master's Faucet stopped
just before the kill, started again after; the baseline). For each: the lab
converged with that rate, the fleet started and steady, the active LB
SIGKILLed, then, measured at the switches, the time until each emulated
switch is served again (its first echo answered), p50 and p100 over the
switches, and the time until the master has every datapath again.

It prints the median (min-max) over the rounds of each arm, and each one's
ratio to the baseline's, from the same run (ARMS picks the arms: any rate,
or off). Results: benchmarks/results/pace.json, the last run's.

Usage (after `make lab`):  make bench-pace [N=500] [MODE=proxy] [ROUNDS=2] [ARMS=0,100,off]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import fleet
from benchlib import results
from benchlib.lab import lab, require, run, stop_on_sigterm
from benchlib.stats import percentile, ratio, spread

# The arms: mirror_master_connect_rate 0 (unpaced) and 100 (the role's
# default), and "off", the baseline: no catch-up, the master's Faucet stopped.
ARMS = ("0", "100", "off")
NAMES = {"0": "unpaced (rate 0)", "off": "none (the master stopped)"}
MASTER_DOWN = 5.0  # seconds between stopping the master's Faucet and the kill (its shadow sessions end)


def failover(mode: str, n: int, arm: str, names: set[str]) -> dict:
    """The lab converged with the arm's rate and the fleet steady, then the active LB killed."""
    rate = 100 if arm == "off" else int(arm)
    fleet.converge_with_fleet(mode, n, {"mirror_master_connect_rate": rate})
    fleet.fleet("started", n)
    fleet.steady(names)
    addresses = list(fleet.switches())
    master = lab().master.name
    try:
        if arm == "off":
            run("podman", "exec", master, "systemctl", "stop", "faucet")
            time.sleep(MASTER_DOWN)
        found = fleet.lb_failover(fleet.active_lb(), names, addresses, master=arm != "off")
    finally:
        run("podman", "exec", master, "systemctl", "start", "faucet", check=False)
    served = sorted(v for v in found["lb_served"] if v == v)
    fleet.reachable()
    summary = {
        "served_p50": percentile(served, 0.5) if served else None,
        "served_p100": served[-1] if len(served) == len(addresses) else None,
        "unserved": len(addresses) - len(served),
        "resets": found["lb_resets"],
        "master_caught_up": found["master_caught_up"],
    }
    print(f"{arm}: {summary}", file=sys.stderr, flush=True)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="switches in the fleet")
    parser.add_argument("--mode", default="proxy", choices=("proxy", "nat"))
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each arm")
    parser.add_argument("--arms", default=",".join(ARMS), help="distinct rates, or off, comma-separated")
    parser.add_argument("--report", action="store_true", help="print the report of the saved results again")
    args = parser.parse_args()
    if args.report:
        report(results.load("pace")["data"])
        return 0
    require()
    stop_on_sigterm()
    names = fleet.fleet_names(args.n)
    arms = tuple(args.arms.split(","))
    if len(set(arms)) != len(arms) or any(arm != "off" and not arm.isdigit() for arm in arms):
        parser.error(f"an arm is a whole rate or off, not {args.arms}")
    measured: dict[str, list[dict]] = {arm: [] for arm in arms}
    try:
        for round_ in range(args.rounds):
            turn = round_ % len(arms)
            for arm in arms[turn:] + arms[:turn]:
                measured[arm].append(failover(args.mode, args.n, arm, names))
    finally:
        fleet.put_back()
    data = {"n": args.n, "mode": args.mode, "rates": measured}
    results.save("pace", data, vars(args))
    report(data)
    return 0


def label(arm: str) -> str:
    return NAMES.get(arm, f"paced, rate {arm}")


def report(data: dict) -> None:
    arms = data["rates"]

    def values(arm: str, key: str) -> list[float]:
        return [r[key] for r in arms[arm] if r[key] is not None]

    def median(arm: str, key: str) -> float | None:
        found = values(arm, key)
        return statistics.median(found) if found else None

    rounds = len(next(iter(arms.values())))
    print(f"\nThe active LB killed, N = {data['n']}, {data['mode']} mode; median (min-max) over {rounds} rounds\n")
    print("| The master's catch-up | served p50 s | p100 s | unserved | resets | master caught up s |")
    print("|---|---|---|---|---|---|")
    for arm in sorted(arms, key=lambda a: (a == "off", int(a) if a.isdigit() else 0)):
        cells = [spread(values(arm, key), "{:.2f}") for key in ("served_p50", "served_p100")]
        cells.append(spread(values(arm, "unserved"), "{:.0f}"))
        cells.append(spread(values(arm, "resets"), "{:.0f}"))
        cells.append(spread(values(arm, "master_caught_up"), "{:.2f}", empty="-"))
        print(f"| {label(arm)} | " + " | ".join(cells) + " |")
    print()
    for arm in arms:
        if arm != "off" and "off" in arms:
            p50 = ratio(median(arm, "served_p50"), median("off", "served_p50"))
            p100 = ratio(median(arm, "served_p100"), median("off", "served_p100"))
            print(f"{label(arm)} / none: served p50 {p50}, p100 {p100}")


if __name__ == "__main__":
    sys.exit(main())
