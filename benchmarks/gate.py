#!/usr/bin/env python3
"""What NAT mode's identity gate costs a switch that connects.

While a session is not proven, the active LB hands each packet the switch
sends to the gate (NFQUEUE) and waits for its answer: the SYN, the HELLO,
the FEATURES_REPLY, the PORT_DESC reply. After that, the kernel forwards the
session alone, so the gate costs the handshake and nothing later.

An emulated switch (datapath `bench`, 0x99, which the lab binds to sw1's
address) in sw1's network namespace connects to the front VIP again and
again, plays the switch's side of Faucet's handshake, and records:

  - connect: from connect() to the established TCP connection (the SYN
    passes the gate);
  - handshake: from connect() to the controller's first message after the
    switch's PORT_DESC reply (Faucet acting on a datapath it now knows).

Each round runs --handshakes connections with the gate (`gate`) and as many
with the gate stopped on the active LB (`bypass`: the queue lets the
packets through), in alternating order; the medians of the rounds are
reported with their min-max, and the gate's cost against the bypass
measured in the same round.

Usage (after `make lab`):  make bench-gate  [ROUNDS=5]
The lab is converged into NAT mode, and back into proxy mode at the end.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time

from benchlib import results
from benchlib.lab import converge, converge_back, in_netns, lab, require, run, settle, unit
from benchlib.stats import spread
from sdn_ha_mirror.emulator import answer
from sdn_ha_mirror.openflow import OFPT, Framer, pack

PORT_DESC = 13
PAUSE = 0.3  # seconds between connections: Faucet forgets the datapath it just lost


def handshake() -> tuple[float, float]:
    """One connection to the VIP as the bench datapath: (connect, handshake) seconds."""
    target, dpid = (lab().front_vip, lab().openflow_port), lab().bench_dpid  # read before the clock starts
    start = time.perf_counter()
    sock = socket.create_connection(target, timeout=5)
    connected = time.perf_counter() - start
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.sendall(pack(4, OFPT.HELLO, 1))
        framer, described = Framer(), False
        while True:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("the controller closed the session during the handshake")
            for message in framer.feed(data):
                if described:
                    return connected, time.perf_counter() - start
                if (reply := answer(message, dpid, 1)) is not None:
                    sock.sendall(reply)
                if message.type == OFPT.MULTIPART_REQUEST and message.body[:2] == PORT_DESC.to_bytes(2, "big"):
                    described = True
    finally:
        sock.close()


def handshakes(count: int) -> None:
    """In the switch host's network namespace: `count` connections, printed
    as JSON: the timings of those that completed, and why the others did not
    (a switch the gate fails to let in is a result, not a crash)."""
    rows, failures = [], []
    for _ in range(count):
        try:
            rows.append(handshake())
        except OSError as exc:  # ConnectionError and timeouts too
            failures.append(repr(exc))
        time.sleep(PAUSE)
    print(json.dumps({"rows": rows, "failures": failures}))


def gate(lb: str, on: bool) -> None:
    run("podman", "exec", lb, "systemctl", "start" if on else "stop", unit("identity_gate"))
    time.sleep(1)


def measure(count: int) -> tuple[list[tuple[float, float]], list[str]]:
    """`count` connections from the switch host: the timings, and the failures."""
    out = subprocess.run(
        in_netns(lab().switch.name, sys.executable, __file__, "--handshakes", str(count)),
        text=True,
        stdout=subprocess.PIPE,
        check=True,
    )
    got = json.loads(out.stdout)
    return [tuple(row) for row in got["rows"]], got["failures"]


def ms(values: list[float]) -> str:
    return spread([v * 1000 for v in values], "{:.2f}", " ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=20, help="connections per case and round")
    parser.add_argument("--handshakes", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.handshakes:
        handshakes(args.handshakes)
        return 0
    require()
    medians: dict[str, dict[str, list[float]]] = {"gate": {}, "bypass": {}}
    failures: dict[str, list[str]] = {"gate": [], "bypass": []}
    try:
        converge("nat")
        active = settle()
        try:
            for n in range(args.rounds):
                for case in ("gate", "bypass") if n % 2 == 0 else ("bypass", "gate"):
                    gate(active, case == "gate")
                    rows, failed = measure(args.count)
                    failures[case] += failed
                    for i, name in enumerate(("connect", "handshake")):
                        medians[case].setdefault(name, []).append(statistics.median(r[i] for r in rows))
                    print(
                        f"round {n + 1} {case}: connect {ms([r[0] for r in rows])},"
                        f" handshake {ms([r[1] for r in rows])}, failed {len(failed)}: {failed}",
                        file=sys.stderr,
                        flush=True,
                    )
        finally:
            gate(active, True)
        data = {"active": active, "rounds": args.rounds, "count": args.count, "medians": medians, "failures": failures}
        results.save("gate", data, vars(args))
        report(data)
    finally:
        converge_back()
    return 0


def report(data: dict) -> None:
    medians = data["medians"]
    print(
        f"\nNAT mode, the identity gate on the active LB ({data['active']}); {data['rounds']} rounds of {data['count']}"
    )
    print("connections per case; medians of the rounds' medians (min-max)\n")
    print("| Measure | gate | bypass (gate stopped) | Cost |")
    print("|---|---|---|---|")
    for name in ("connect", "handshake"):
        on, off = medians["gate"][name], medians["bypass"][name]
        costs = [(a - b) * 1e6 for a, b in zip(on, off, strict=True)]
        print(
            f"| {name} | {ms(on)} | {ms(off)} | {statistics.median(costs):+.0f} µs"
            f" ({min(costs):+.0f}..{max(costs):+.0f}), {statistics.median(on) / statistics.median(off):.2f}x |"
        )
    total = data["rounds"] * data["count"]
    for case, failed in data.get("failures", {}).items():
        print(f"{case}: {len(failed)} of {total} connections failed" + (f": {sorted(set(failed))}" if failed else ""))


if __name__ == "__main__":
    sys.exit(main())
