#!/usr/bin/env python3
"""Run times of the playbooks a user runs again and again, on the running lab.

Each round runs every case once, in turn, so that the machine's slow and fast
moments spread over all of them:

  ping      `ansible all -m ping`: start Ansible and reach every lab host once.
            The baseline of this run: what any playbook pays before it does
            any work.
  site      `ansible-playbook site.yml` on the converged lab (must change
            nothing: a run that changes something is reported)
  check     `ansible-playbook site.yml --check`
  status    `ansible-playbook playbooks/status.yml`

It prints, per case, the median, p95 and min-max wall time, the ratio of
the median to the ping baseline's, and the task results per run.

Usage (after `make lab`):  make bench-runtime  [RUNS=5]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time

from benchlib import ROOT, results
from benchlib.lab import require
from benchlib.stats import summary

CASES: dict[str, list[str]] = {
    "ping": ["ansible", "all", "-m", "ansible.builtin.ping"],
    "site": ["ansible-playbook", "site.yml"],
    "check": ["ansible-playbook", "site.yml", "--check"],
    "status": ["ansible-playbook", "playbooks/status.yml"],
}
RECAP = re.compile(r"^\S+\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)


def timed(argv: list[str]) -> tuple[float, str]:
    """Wall time of one run, and its output; a failed run stops the benchmark."""
    started = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, text=True, capture_output=True, check=False)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed (exit {done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    return elapsed, done.stdout


def recap(output: str) -> tuple[int, int]:
    """Task results and changes over every host, from the PLAY RECAP lines."""
    rows = [tuple(map(int, m)) for m in RECAP.findall(output)]
    return sum(r[0] for r in rows), sum(r[1] for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="rounds (each runs every case once)")
    args = parser.parse_args()
    require()

    times: dict[str, list[float]] = {name: [] for name in CASES}
    tasks: dict[str, int] = {}
    changed_runs: list[str] = []
    for round_ in range(1, args.runs + 1):
        for name, argv in CASES.items():
            elapsed, output = timed(argv)
            count, changed = recap(output)
            times[name].append(elapsed)
            tasks[name] = count
            if changed and name == "site":
                changed_runs.append(f"round {round_}: {changed} change(s)")
            print(f"round {round_}/{args.runs} {name:<6} {elapsed:6.2f} s  {count} task results", flush=True)

    data = {"times": times, "tasks": tasks, "changed": changed_runs}
    results.save("runtime", data, vars(args))
    report(data)
    if changed_runs:
        sys.exit(1)


def report(data: dict) -> None:
    stats = {name: summary(values) for name, values in data["times"].items()}
    base = stats["ping"]["median"]
    rounds = len(data["times"]["ping"])
    print(f"\n{rounds} rounds, median (p95, min-max), ratio of the median to ping's")
    print(f"{'case':<7} {'wall time':<34} {'vs ping':>8} {'task results':>13}")
    for name, s in stats.items():
        spread = f"{s['median']:.2f} s (p95 {s['p95']:.2f}, {s['min']:.2f}-{s['max']:.2f})"
        print(f"{name:<7} {spread:<34} {s['median'] / base:7.1f}x {data['tasks'][name] or '-':>13}")
    changed = data["changed"]
    print("site.yml " + ("CHANGED: " + "; ".join(changed) if changed else "changed nothing in any round"))


if __name__ == "__main__":
    main()
