#!/usr/bin/env python3
"""VRRP stability soak on the running lab: for each keepalived profile, keep
both CPUs saturated with busy loops inside the lab for a bounded time, or
lose a share of the frames on the advert (sync) segment, and count the VRRP
transitions that happen meanwhile. No LB fails, so every transition is
spurious.

With loss, a standby takes over only when every instance of its sync group
(front and back) has missed 3 adverts in a row at the same time: keepalived
moves a sync group to master only once all its members' timers have run
out. The table prints seconds / advert x p^6 x (1 - p) beside the count, as
if the two had to lose 3 in a row at the same moment; the measured counts
were 2-3 times that (their timers need not run out together).

Usage (after `make lab`):  make bench-soak  [SOAK_SECONDS=300] [SOAK_LOSS=PERCENT]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time

from benchlib import results
from benchlib.lab import apply_profile, lab, require, steady, stop_on_sigterm

BUSY_LOOPS_PER_LB = 2
ADVERT = {"stock": 1.0, "standard": 0.1, "fast": 0.05}
LOSS_TABLE = "sdn_ha_soak"


def lose(percent: float) -> None:
    """Drop `percent` % of the frames that reach each LB on the sync segment,
    at random; 0 removes the table."""
    for lb in lab().lbs:
        script = (
            f"set -- $(ip -o -4 addr show to {lab().sync_segment}); "
            f"! nft list table netdev {LOSS_TABLE} >/dev/null 2>&1 || nft delete table netdev {LOSS_TABLE}; "
        )
        if percent:
            script += (
                f"nft add table netdev {LOSS_TABLE} && "
                f'nft add chain netdev {LOSS_TABLE} in "{{ type filter hook ingress device $2 priority -300; }}" && '
                f'nft add rule netdev {LOSS_TABLE} in numgen random mod 1000 "<" {round(percent * 10)} drop'
            )
        subprocess.run(["podman", "exec", lb, "sh", "-c", script], check=True)


def takeovers_expected(profile: str, percent: float, seconds: int, instances: int = 2) -> float:
    p = percent / 100
    return seconds / ADVERT[profile] * p ** (3 * instances) * (1 - p)


def transitions(lb: str, since: float) -> list[str]:
    out = subprocess.run(
        ["podman", "exec", lb, "journalctl", "-t", "sdn_ha-vrrp", "--since", f"@{since:.0f}", "-o", "cat"],
        text=True,
        capture_output=True,
        check=True,
    ).stdout
    return [line for line in out.splitlines() if line.startswith("GROUP")]


def soak(profile: str, seconds: int, busy: bool, loss: float) -> tuple[int, float, dict[str, list[str]]]:
    apply_profile(profile)
    steady()
    start = time.time()
    if busy:
        for lb in lab().lbs:
            for _ in range(BUSY_LOOPS_PER_LB):
                subprocess.run(
                    ["podman", "exec", "-d", lb, "timeout", str(seconds), "sh", "-c", "while :; do :; done"], check=True
                )
    loads = []
    try:
        lose(loss)
        while time.time() - start < seconds:
            time.sleep(min(5, max(seconds - (time.time() - start), 0.1)))
            loads.append(os.getloadavg()[0])
    finally:
        lose(0)
    time.sleep(2)
    found = {lb: transitions(lb, start) for lb in lab().lbs}
    return sum(len(v) for v in found.values()), max(loads), found


def main() -> None:
    stop_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--profiles", default="standard,fast")
    parser.add_argument("--loss", type=float, default=0.0, help="percent of the sync segment's frames lost at each LB")
    parser.add_argument("--no-busy", dest="busy", action="store_false", help="no busy loops")
    args = parser.parse_args()
    if not 0 <= args.loss <= 100:
        parser.error("--loss is a percentage, 0-100")
    require()
    data: dict = {"seconds": args.seconds, "loss": args.loss, "profiles": {}}
    try:
        for profile in args.profiles.split(","):
            loops = BUSY_LOOPS_PER_LB * len(lab().lbs) if args.busy else 0
            print(
                f"== profile {profile}: {args.seconds} s, {loops} busy loops on {os.cpu_count()} CPUs, "
                f"{args.loss:g} % loss on the sync segment",
                flush=True,
            )
            count, peak, found = soak(profile, args.seconds, args.busy, args.loss)
            takeovers = sum(" -> MASTER" in line for lines in found.values() for line in lines)
            data["profiles"][profile] = {
                "transitions": count,
                "takeovers": takeovers,
                "expected": takeovers_expected(profile, args.loss, args.seconds),
                "peak_load": peak,
                "lines": found,
            }
            print(f"   spurious VRRP transitions: {count} (peak 1-min load {peak:.1f})", flush=True)
            for lb, lines in found.items():
                for line in lines:
                    print(f"   {lb}: {line}")
    finally:
        apply_profile("standard")
    results.save("vrrp_soak" if not args.loss else "vrrp_soak_loss", data, vars(args))
    report(data)


def report(data: dict) -> None:
    print(f"\n{data['loss']:g} % loss on the sync segment, {data['seconds']} s per profile")
    print("profile     spurious transitions  takeovers  p^6 estimate")
    for profile, r in data["profiles"].items():
        print(f"{profile:11} {r['transitions']:>20}  {r['takeovers']:>9}  {r['expected']:>8.2f}")


if __name__ == "__main__":
    main()
