#!/usr/bin/env python3
"""VRRP stability soak on the running lab: for each keepalived profile, keep
both CPUs saturated with busy loops inside the lab for a bounded time, and
count the VRRP transitions that happen meanwhile. With no fault injected,
every transition is spurious.

Usage (after `make lab`):  make bench-soak  [SOAK_SECONDS=300]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time

from failover import LBS, apply_profile, labnet, steady, stop_on_sigterm

BUSY_LOOPS_PER_LB = 2


def transitions(lb: str, since: float) -> list[str]:
    out = subprocess.run(
        ["podman", "exec", lb, "journalctl", "-t", "sdn_ha-vrrp", "--since", f"@{since:.0f}", "-o", "cat"],
        text=True,
        capture_output=True,
        check=True,
    ).stdout
    return [line for line in out.splitlines() if line.startswith("GROUP")]


def soak(profile: str, seconds: int) -> tuple[int, float, dict[str, list[str]]]:
    apply_profile(profile)
    steady()
    start = time.time()
    for lb in LBS:
        for _ in range(BUSY_LOOPS_PER_LB):
            subprocess.run(
                ["podman", "exec", "-d", lb, "timeout", str(seconds), "sh", "-c", "while :; do :; done"], check=True
            )
    loads = []
    while time.time() - start < seconds + 2:
        time.sleep(5)
        loads.append(os.getloadavg()[0])
    found = {lb: transitions(lb, start) for lb in LBS}
    return sum(len(v) for v in found.values()), max(loads), found


def main() -> None:
    stop_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--profiles", default="standard,fast")
    args = parser.parse_args()
    labnet.require()
    results = {}
    try:
        for profile in args.profiles.split(","):
            print(
                f"== profile {profile}: {args.seconds} s with {BUSY_LOOPS_PER_LB * len(LBS)} busy loops "
                f"on {os.cpu_count()} CPUs",
                flush=True,
            )
            count, peak, found = soak(profile, args.seconds)
            results[profile] = count
            print(f"   spurious VRRP transitions: {count} (peak 1-min load {peak:.1f})", flush=True)
            for lb, lines in found.items():
                for line in lines:
                    print(f"   {lb}: {line}")
    finally:
        apply_profile("standard")
    print("\nprofile     spurious transitions")
    for profile, count in results.items():
        print(f"{profile:11} {count}")


if __name__ == "__main__":
    main()
