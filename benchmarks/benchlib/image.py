"""For the benchmarks that need only the lab image, not the lab: run a
benchmark script inside a throwaway container of that image, with no
network at all, the repository mounted read-only at /src. The script
imports this module inside that container too, where only the image's
Python runs: the lab's network check is imported when it is needed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from . import ROOT

# The lab image the benchmarks run in: Debian 12's, as for every saved result.
IMAGE_RELEASE = "bookworm"


def run_inside(
    script: str,
    arguments: list[str],
    caps: str = "",
    timeout: float | None = None,
    volumes: dict | None = None,
    output: tuple[str, str] | None = None,
) -> int:
    """Run `python3 /src/benchmarks/<script> --inside <arguments>` in a fresh
    container of the Debian 12 lab image (IMAGE_RELEASE, the release every
    saved result was measured on), with `volumes` (host path -> container path)
    mounted read-only too, and `output` (host path, container path) the one
    place it may write to; its exit code (1 without an image, or when it
    overran `timeout` seconds, in which case the container is removed)."""
    import labnet  # the host side only

    labnet.require(podman_only=True)
    images = subprocess.run(
        [
            "podman",
            "images",
            "--filter",
            f"reference=localhost/sdn-ha-lab-{IMAGE_RELEASE}",
            "--format",
            "{{.Repository}}:{{.Tag}}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not images:
        print(f"no {IMAGE_RELEASE} lab image: run `make setup` first", file=sys.stderr)
        return 1
    name = f"sdn-ha-bench-{Path(script).stem}-{os.getpid()}"
    command = ["podman", "run", "--rm", "--name", name, "--network", "none"]
    if caps:
        command += ["--cap-add", caps]
    for host, inside in (volumes or {}).items():
        command += ["-v", f"{host}:{inside}:ro"]
    if output:
        command += ["-v", f"{output[0]}:{output[1]}:rw"]
    command += ["-v", f"{ROOT}:/src:ro", images[0], "python3", f"/src/benchmarks/{script}", "--inside", *arguments]
    try:
        return subprocess.run(command, timeout=timeout, check=False).returncode
    except subprocess.TimeoutExpired:
        print("the benchmark overran its time; removing its container", file=sys.stderr)
        subprocess.run(["podman", "rm", "-f", "-t", "0", name], check=False)
        return 1
