#!/usr/bin/env python3
"""LB failover disruption, proxy mode against NAT mode, on the running lab.

An emulated switch (datapath `bench`, 0x99, configured in the lab's Faucet)
runs in sw1's network namespace, connects to the front VIP and sends an
OpenFlow ECHO_REQUEST every 10 ms. Each trial SIGKILLs the active LB's
container and records:

  - the stall: the longest silence between echo replies from just before
    the fault on (a reset session counts until its replacement answers; the
    emulator reconnects at once, faster than a real switch's backoff);
  - whether the session was reset.

Cases, each with --trials trials, in one run:

  proxy          sdn_ha_mode=proxy (HAProxy and the sidecar; the baseline)
  nat            sdn_ha_mode=nat, the DNAT target unchanged by the failover
  nat-retarget   nat, but the standby's DNAT target is moved to another
                 controller just before the fault (its prober paused): the
                 session survives only through conntrackd's committed state

The lab is converged into each mode with site.yml, and back to the
inventory's mode at the end.

Usage (after `make lab`):  make bench-nat  [TRIALS=5]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

from failover import FRONT_VIP, LBS, ROOT, active_lb, in_netns, labnet, pid_of, run, vrrp_state, wait

BENCH_DPID = 0x99
INTERVAL = 0.01
SWITCH = "198.18.1.10"  # sw1, whose network namespace the emulated switch runs in
BACKUPS = ("198.18.3.22", "198.18.3.23")


# -- the emulated switch (runs inside sw1's network namespace) ---------------
def of(kind: int, xid: int, body: bytes = b"") -> bytes:
    return struct.pack("!BBHI", 4, kind, 8 + len(body), xid) + body


def answer(kind: int, xid: int, body: bytes) -> bytes | None:
    """What a quiet switch answers to a controller's message, if anything."""
    if kind == 5:  # FEATURES_REQUEST
        return of(6, xid, struct.pack("!QIBB2xII", BENCH_DPID, 0, 1, 0, 0, 0))
    if kind == 2:  # ECHO_REQUEST
        return of(3, xid, body)
    if kind == 20:  # BARRIER_REQUEST
        return of(21, xid)
    if kind == 7:  # GET_CONFIG_REQUEST
        return of(8, xid, struct.pack("!HH", 0, 0xFFFF))
    if kind == 24:  # ROLE_REQUEST
        return of(25, xid, body[:16])
    if kind == 18 and len(body) >= 2:  # MULTIPART_REQUEST: an empty reply of the same kind
        kind_ = struct.unpack_from("!H", body)[0]
        payload = bytes(1056) if kind_ == 0 else b""  # OFPMP_DESC has a fixed body
        return of(19, xid, struct.pack("!HH4x", kind_, 0) + payload)
    return None


def emulate(seconds: float) -> None:
    """Keep one session to the VIP up for `seconds`, echoing every INTERVAL;
    print every echo reply's arrival time and every reset as JSON."""
    events: list = []
    stop = time.time() + seconds

    def session() -> None:
        sock = socket.create_connection((FRONT_VIP, 6653), timeout=1)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(of(0, 1))
        events.append(["connected", time.time()])
        alive = threading.Event()
        alive.set()

        def reader() -> None:
            buf = b""
            try:
                while data := sock.recv(65536):
                    buf += data
                    while len(buf) >= 8 and len(buf) >= struct.unpack_from("!H", buf, 2)[0]:
                        length = struct.unpack_from("!H", buf, 2)[0]
                        kind, xid, body = buf[1], struct.unpack_from("!I", buf, 4)[0], buf[8:length]
                        buf = buf[length:]
                        if kind == 3 and xid >= 1 << 31:
                            events.append(["reply", time.time()])
                        elif (reply := answer(kind, xid, body)) is not None:
                            sock.sendall(reply)
            except OSError:
                pass
            alive.clear()

        threading.Thread(target=reader, daemon=True).start()
        xid = 1 << 31
        try:
            while alive.is_set() and time.time() < stop:
                sock.sendall(of(2, xid, b"bench"))
                xid += 1
                time.sleep(INTERVAL)
        except OSError:
            pass
        if time.time() < stop:
            events.append(["reset", time.time()])
        sock.close()

    while time.time() < stop:
        try:
            session()
        except OSError:
            time.sleep(0.02)
    print(json.dumps(events))


# -- the driver (runs on the host) ---------------------------------------------
def converge(mode: str) -> None:
    print(f"converging the lab in {mode} mode ...", file=sys.stderr, flush=True)
    run("ansible-playbook", str(ROOT / "site.yml"), "-e", f"sdn_ha_mode={mode}", capture=False)


def settle() -> str:
    """Both LBs up, one master; returns the active one."""
    wait(lambda: sorted(vrrp_state(lb) for lb in LBS) == ["BACKUP", "MASTER"], 90, "one MASTER and one BACKUP")
    time.sleep(3)
    return active_lb()


def trial(case: str) -> tuple[float, bool]:
    active = settle()
    standby = next(lb for lb in LBS if lb != active)
    if case == "nat-retarget":
        # The standby would send sw1's new sessions to the other backup: pause its prober and move its map.
        run("podman", "exec", standby, "systemctl", "kill", "--signal=SIGSTOP", "sdn-ha-prober")
        mapped = run("podman", "exec", standby, "cat", "/run/sdn_ha-nat/assignment")
        own = next(line.split()[1].rsplit(":", 1)[0] for line in mapped.splitlines() if line.startswith(f"{SWITCH} "))
        other = next(b for b in BACKUPS if b != own)
        run(
            "podman",
            "exec",
            standby,
            "nft",
            f"delete element ip sdn_ha_nat target {{ {SWITCH} }}; "
            f"add element ip sdn_ha_nat target {{ {SWITCH} : {other} }}",
        )
    emulator = subprocess.Popen(
        in_netns("sw1", sys.executable, __file__, "--emulate", "9"), text=True, stdout=subprocess.PIPE
    )
    time.sleep(3)
    # SIGKILL to the container's init, as `podman kill` sends it, timed
    # without podman's own latency.
    pid = pid_of(active)
    fault = time.time()
    os.kill(pid, signal.SIGKILL)
    out, _ = emulator.communicate(timeout=30)
    if case == "nat-retarget":
        run("podman", "exec", standby, "systemctl", "kill", "--signal=SIGCONT", "sdn-ha-prober")
    wait(lambda: run("podman", "inspect", "--format", "{{.State.Running}}", active) == "false", 30, f"{active} to stop")
    run("podman", "start", active)
    events = json.loads(out)
    # The stall: the longest silence between echo replies from just before
    # the fault on (across a reset, until the new session answers).
    replies = sorted(t for kind, t in events if kind == "reply" and t > fault - 0.5)
    stall = max((b - a for a, b in itertools.pairwise(replies)), default=float("nan"))
    reset = any(kind == "reset" and t > fault - 0.1 for kind, t in events)
    return stall, reset


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--emulate", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.emulate:
        emulate(args.emulate)
        return 0
    labnet.require()
    results: dict[str, list[tuple[float, bool]]] = {}
    try:
        for mode, cases in (("proxy", ["proxy"]), ("nat", ["nat", "nat-retarget"])):
            converge(mode)
            for case in cases:
                for n in range(args.trials):
                    stall, reset = trial(case)
                    results.setdefault(case, []).append((stall, reset))
                    print(f"{case} trial {n + 1}: stall {stall:.3f} s, reset {reset}", file=sys.stderr, flush=True)
    finally:
        settle()
        converge("proxy")
    print(f"\nLB failover (podman kill of the active LB), {args.trials} trials per case; echo every 10 ms\n")
    print("| Case | Echo stall, median | p95 | min-max | Sessions reset |")
    print("|---|---|---|---|---|")
    for case, rows in results.items():
        stalls = sorted(s for s, _ in rows)
        p95 = stalls[min(len(stalls) - 1, round(0.95 * (len(stalls) - 1)))]
        resets = sum(r for _, r in rows)
        print(
            f"| {case} | {statistics.median(stalls):.3f} s | {p95:.3f} s | {stalls[0]:.3f}-{stalls[-1]:.3f} s"
            f" | {resets} of {len(rows)} |"
        )
    base = statistics.median(s for s, _ in results["proxy"])
    for case in ("nat", "nat-retarget"):
        print(f"{case}: median stall {statistics.median(s for s, _ in results[case]) / base:.2f}x proxy mode's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
