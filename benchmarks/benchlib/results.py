"""Results as data. Each benchmark writes what it measured, with when, where
and at which revision, to benchmarks/results/NAME.json; its printed report
and the figures (benchlib.figures) are drawn from that data."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import time
from pathlib import Path

from . import ROOT

DIRECTORY = ROOT / "benchmarks" / "results"


def revision() -> str:
    """The checked-out commit, with '+dirty' when the tree has changes
    outside the results and the docs."""

    def git(*argv: str) -> str:
        try:
            done = subprocess.run(["git", "-C", str(ROOT), *argv], capture_output=True, text=True, check=False)
        except OSError:  # no git (the lab image)
            return ""
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    # Results and docs are what a run writes and describes, not what it measures.
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!benchmarks/results", ":!docs")
    return commit + ("+dirty" if changed else "")


# The revision the benchmark started at: the code that measured, whatever is
# committed while it runs.
STARTED_AT = revision()


def save(name: str, data: dict, arguments: dict | None = None, path: Path | None = None) -> Path:
    """Write data as NAME.json (or to path), with the run's context."""
    path = path or DIRECTORY / f"{name}.json"
    record = {
        "benchmark": name,
        "revision": STARTED_AT,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "arguments": arguments or {},
        "data": data,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(record))
    print(f"results: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}", flush=True)
    return path


# A list of numbers (or nulls) only, as json.dumps(indent=1) spreads it over lines.
_VALUE = r"(?:-?[\d.]+(?:[eE][-+]?\d+)?|null|NaN|-?Infinity|true|false)"
_FLAT_LIST = re.compile(rf"\[\n\s*((?:{_VALUE},\n\s*)*{_VALUE})\n\s*\]")


def dumps(record: dict) -> str:
    """JSON, one key per line, each list of plain values on one line."""
    text = json.dumps(record, indent=1)
    return _FLAT_LIST.sub(lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text) + "\n"


def load(name: str, path: Path | None = None) -> dict:
    """The record save() wrote (to path, or as NAME.json): benchmark,
    revision, finished, cpus, kernel, arguments and data."""
    return json.loads((path or DIRECTORY / f"{name}.json").read_text())
