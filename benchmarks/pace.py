#!/usr/bin/env python3
"""The master's catch-up after an LB failover, paced or not: does it delay the backups?

After the active LB dies, every switch's session is opened again through
the new one: by the backups, which serve the switches, and by the sidecar's
shadow sessions to the master. The sidecar paces the shadow sessions at
mirror_master_connect_rate connects a second (100 by default); 0 opens
them as fast as the switches come. The controllers share this machine's
cores, so an unpaced master competes with the backups for them.

With the lab converged with a fleet of N switches (bench-fleet's), ROUNDS
times each of the two rates (0 first in odd rounds, 100 first in even
ones): the lab converged with that rate, the fleet started and steady, the
active LB SIGKILLed, then, measured at the switches, the time until each
emulated switch is served again (its first echo answered), p50 and p100
over the switches, and the time until the master has every datapath again.

It prints the median (min-max) over the rounds of each, for each rate, and
the paced one's ratio to the unpaced one's. Results: benchmarks/results/pace.json.

Usage (after `make lab`):  make bench-pace [N=500] [MODE=proxy] [ROUNDS=3]
"""

from __future__ import annotations

import argparse
import statistics
import sys

import fleet
from benchlib import results
from benchlib.lab import require, stop_on_sigterm
from benchlib.stats import percentile, ratio, spread

RATES = (0, 100)  # mirror_master_connect_rate: unpaced, and the role's default


def failover(mode: str, n: int, rate: int, names: set[str]) -> dict:
    """The lab converged with the rate and the fleet steady, then the active LB killed."""
    fleet.converge_with_fleet(mode, n, {"mirror_master_connect_rate": rate})
    fleet.fleet("started", n)
    fleet.steady(names)
    addresses = list(fleet.switches())
    found = fleet.lb_failover(fleet.active_lb(), names, addresses)
    served = sorted(v for v in found["lb_served"] if v == v)
    fleet.reachable()
    summary = {
        "served_p50": percentile(served, 0.5) if served else None,
        "served_p100": served[-1] if len(served) == len(addresses) else None,
        "unserved": len(addresses) - len(served),
        "resets": found["lb_resets"],
        "master_caught_up": found["master_caught_up"],
    }
    print(f"rate {rate}: {summary}", file=sys.stderr, flush=True)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="switches in the fleet")
    parser.add_argument("--mode", default="proxy", choices=("proxy", "nat"))
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each rate")
    parser.add_argument("--report", action="store_true", help="print the report of the saved results again")
    args = parser.parse_args()
    if args.report:
        report(results.load("pace")["data"])
        return 0
    require()
    stop_on_sigterm()
    names = fleet.fleet_names(args.n)
    measured: dict[str, list[dict]] = {str(rate): [] for rate in RATES}
    try:
        for round_ in range(args.rounds):
            for rate in RATES if round_ % 2 == 0 else reversed(RATES):
                measured[str(rate)].append(failover(args.mode, args.n, rate, names))
    finally:
        fleet.put_back()
    data = {"n": args.n, "mode": args.mode, "rates": measured}
    results.save("pace", data, vars(args))
    report(data)
    return 0


def report(data: dict) -> None:
    rates = data["rates"]

    def values(rate: str, key: str) -> list[float]:
        return [r[key] for r in rates[rate] if r[key] is not None]

    def median(rate: str, key: str) -> float | None:
        found = values(rate, key)
        return statistics.median(found) if found else None

    print(
        f"\nThe active LB killed, N = {data['n']}, {data['mode']} mode; median (min-max) over "
        f"{len(rates['0'])} rounds; ratio: paced / unpaced\n"
    )
    print("| mirror_master_connect_rate | served p50 s | served p100 s | unserved | resets | master caught up s |")
    print("|---|---|---|---|---|---|")
    for rate in rates:
        cells = [spread(values(rate, key), "{:.2f}") for key in ("served_p50", "served_p100")]
        cells.append(spread(values(rate, "unserved"), "{:.0f}"))
        cells.append(spread(values(rate, "resets"), "{:.0f}"))
        cells.append(spread(values(rate, "master_caught_up"), "{:.2f}"))
        print(f"| {rate or '0 (unpaced)'} | " + " | ".join(cells) + " |")
    paced, unpaced = str(RATES[1]), str(RATES[0])
    print(
        f"\npaced / unpaced: served p50 {ratio(median(paced, 'served_p50'), median(unpaced, 'served_p50'))}, "
        f"p100 {ratio(median(paced, 'served_p100'), median(unpaced, 'served_p100'))}; "
        f"master caught up {ratio(median(paced, 'master_caught_up'), median(unpaced, 'master_caught_up'))}"
    )


if __name__ == "__main__":
    sys.exit(main())
