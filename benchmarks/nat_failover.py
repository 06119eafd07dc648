#!/usr/bin/env python3
"""LB failover disruption, proxy mode against NAT mode, on the running lab.

An emulated switch (datapath `bench`, 0x99, configured in the lab's Faucet)
runs in sw1's network namespace, connects to the front VIP and sends an
OpenFlow ECHO_REQUEST every 10 ms. Each trial SIGKILLs the active LB's
container and records:

  - the stall: the longest silence between echo replies from just before
    the fault on (a reset session counts until its replacement answers; the
    emulator reconnects at once, faster than a real switch's backoff);
  - whether the session was reset;
  - how long after the fault the master controller's Faucet counts a
    PACKET_IN sent after it (the emulated switch sends one from a new MAC
    every 50 ms; the master's count is polled every 50 ms in its own
    network namespace): the mirror is back on the new active LB.

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
import socket
import struct
import subprocess
import sys
import threading
import time

from benchlib import results
from benchlib.lab import (
    MASTER_METRICS,
    NAT_ASSIGNMENT,
    NAT_TABLE,
    converge,
    converge_back,
    in_netns,
    lab,
    require,
    run,
    settle,
    sigkill,
    standby_of,
    unit,
    wait,
)
from benchlib.stats import ratio, spread, summary
from sdn_ha_mirror.emulator import answer, packet_in
from sdn_ha_mirror.openflow import OFPT, Framer, pack

INTERVAL = 0.01
PACKET_IN_EVERY = 5  # echoes: one PACKET_IN from a new MAC every 50 ms
PACKET_IN_QUIET = 1.0
KILL_MARGIN = 0.05  # seconds after the SIGKILL in which the old LB may still have mirrored a PACKET_IN


def emulate(seconds: float) -> None:
    """Keep one session to the VIP up for `seconds`, echoing every INTERVAL
    and sending a PACKET_IN from a new MAC every PACKET_IN_EVERY echoes;
    print every echo reply's arrival time, every PACKET_IN's and every reset
    as JSON. The switch answers the controller as sdn_ha_mirror.emulator's
    switches do."""
    events: list = []
    stop = time.time() + seconds
    # No PACKET_IN in the first second: the master's count before them is
    # the baseline the driver counts from.
    quiet_until = time.time() + PACKET_IN_QUIET
    macs = itertools.count(1)

    def session() -> None:
        sock = socket.create_connection((lab().front_vip, lab().openflow_port), timeout=1)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(pack(4, OFPT.HELLO, 1))
        events.append(["connected", time.time()])
        alive = threading.Event()
        alive.set()

        def reader() -> None:
            framer = Framer()
            try:
                while data := sock.recv(65536):
                    for message in framer.feed(data):
                        if message.type == OFPT.ECHO_REPLY and message.xid >= 1 << 31:
                            events.append(["reply", time.time()])
                        elif (reply := answer(message, lab().bench_dpid, 1)) is not None:
                            sock.sendall(reply)
            except OSError:
                pass
            alive.clear()

        threading.Thread(target=reader, daemon=True).start()
        xid = 1 << 31
        try:
            while alive.is_set() and time.time() < stop:
                sock.sendall(pack(4, OFPT.ECHO_REQUEST, xid, b"bench"))
                if xid % PACKET_IN_EVERY == 0 and time.time() > quiet_until:
                    sock.sendall(packet_in(1, struct.pack("!HI", 0x0299, next(macs))))
                    events.append(["packet_in", time.time()])
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


def poll_master(seconds: float) -> None:
    """In the master's network namespace: its Faucet's count of the bench
    datapath's PACKET_INs every 50 ms, as JSON [[time, count], ...]."""
    import re
    import urllib.request

    pattern = re.compile(r'^of_packet_ins_total\{[^}]*dp_name="bench"[^}]*\}\s+(\S+)', re.M)
    samples, stop = [], time.time() + seconds
    while time.time() < stop:
        try:
            text = urllib.request.urlopen(MASTER_METRICS, timeout=0.5).read().decode()
            found = pattern.search(text)
            samples.append([time.time(), float(found.group(1)) if found else 0.0])
        except OSError:
            pass
        time.sleep(0.05)
    print(json.dumps(samples))


# -- the driver (runs on the host) ---------------------------------------------
def trial(case: str) -> dict:
    active = settle()
    standby = standby_of(active)
    switch = lab().switch
    if case == "nat-retarget":
        # The standby would send the switch's new sessions to the other backup: pause its prober and move its map.
        run("podman", "exec", standby, "systemctl", "kill", "--signal=SIGSTOP", unit("nat_prober"))
        mapped = run("podman", "exec", standby, "cat", NAT_ASSIGNMENT)
        own = next(
            line.split()[1].rsplit(":", 1)[0] for line in mapped.splitlines() if line.startswith(f"{switch.address} ")
        )
        other = next(b for b in lab().backups.values() if b != own)
        run(
            "podman",
            "exec",
            standby,
            "nft",
            f"delete element ip {NAT_TABLE} target {{ {switch.address} }}; "
            f"add element ip {NAT_TABLE} target {{ {switch.address} : {other} }}",
        )
    emulator = subprocess.Popen(
        in_netns(switch.name, sys.executable, __file__, "--emulate", "9"), text=True, stdout=subprocess.PIPE
    )
    master = subprocess.Popen(
        in_netns(lab().master.name, sys.executable, __file__, "--poll-master", "9"), text=True, stdout=subprocess.PIPE
    )
    time.sleep(3)
    # SIGKILL to the container's init, as `podman kill` sends it, timed
    # without podman's own latency.
    fault = sigkill(active)
    out, _ = emulator.communicate(timeout=30)
    polled, _ = master.communicate(timeout=30)
    if case == "nat-retarget":
        run("podman", "exec", standby, "systemctl", "kill", "--signal=SIGCONT", unit("nat_prober"))
    wait(lambda: run("podman", "inspect", "--format", "{{.State.Running}}", active) == "false", 30, f"{active} to stop")
    run("podman", "start", active)
    events = json.loads(out)
    # The stall: the longest silence between echo replies from just before
    # the fault on (across a reset, until the new session answers).
    replies = sorted(t for kind, t in events if kind == "reply" and t > fault - 0.5)
    stall = max((b - a for a, b in itertools.pairwise(replies)), default=float("nan"))
    reset = any(kind == "reset" and t > fault - 0.1 for kind, t in events)
    # The master: from the fault until its count of the bench datapath's
    # PACKET_INs exceeds its count before the first one of this trial plus
    # every one sent before the fault (and in the KILL_MARGIN after it, which
    # the dying LB may still have mirrored), that is, until a PACKET_IN only
    # the new active LB can have mirrored has reached it. Conservative: each
    # copy lost around the fault delays it by one more PACKET_IN (50 ms).
    samples = json.loads(polled or "[]")
    sent_before = sum(1 for kind, t in events if kind == "packet_in" and t <= fault + KILL_MARGIN)
    first_in = min((t for kind, t in events if kind == "packet_in"), default=fault)
    base = max((c for t, c in samples if t < first_in), default=None)
    later = [t for t, c in samples if t > fault and base is not None and c >= base + sent_before + 1]
    master_back = later[0] - fault if later else None
    if not later:  # say why, so that a trial without a number can be told apart from a master not fed
        sent = sum(1 for kind, _ in events if kind == "packet_in")
        at_fault = max((c for t, c in samples if t <= fault), default=None)
        seen = (
            f"{len(samples)} samples, the first {samples[0][0] - first_in:+.2f} s from the first PACKET_IN,"
            f" the last count {samples[-1][1]:.0f}"
            if samples
            else "no sample of its count"
        )
        print(
            f"  {case}: no later PACKET_IN counted at the master: {seen}; base {base}, count at the fault"
            f" {at_fault}; PACKET_INs sent: {sent_before} before the fault, {sent} in all",
            file=sys.stderr,
            flush=True,
        )
    # The timeline the figure draws: each echo reply from 0.5 s before the
    # fault to 2.5 s after, as (seconds from the fault, silence since the
    # previous reply).
    timeline = [
        [round(b - fault, 5), round(b - a, 5)] for a, b in itertools.pairwise(replies) if -0.5 < b - fault < 2.5
    ]
    return {"stall": stall, "reset": reset, "master_back": master_back, "timeline": timeline}


def report(data: dict) -> None:
    trials = data["trials"]
    print(f"\nLB failover (podman kill of the active LB), {trials} trials per case; echo every 10 ms\n")
    print("| Case | Echo stall, median | p95 | min-max | Sessions reset | Fault -> a later PACKET_IN at the master |")
    print("|---|---|---|---|---|---|")
    stalls = {case: summary(r["stall"] for r in rows) for case, rows in data["cases"].items()}
    for case, rows in data["cases"].items():
        s, back = stalls[case], summary(r["master_back"] for r in rows)  # None: never within the trial
        if not s["n"]:
            print(f"| {case} | no echo reply in any trial | | | | |")
            continue
        missed = f", {s['missed']} without a reply" if s["missed"] else ""
        resets = sum(r["reset"] for r in rows)
        fed = (
            f"{spread([r['master_back'] for r in rows if r['master_back'] is not None], '{:.2f}', ' s')}, "
            if back["n"]
            else "never, "
        )
        print(
            f"| {case} | {s['median']:.3f} s | {s['p95']:.3f} s | {s['min']:.3f}-{s['max']:.3f} s"
            f"{missed} | {resets} of {len(rows)} | {fed}{back['n']} of {len(rows)} |"
        )
    for case in ("nat", "nat-retarget"):
        if case in stalls and "proxy" in stalls and stalls[case]["n"] and stalls["proxy"]["n"]:
            print(f"{case}: median stall {ratio(stalls[case]['median'], stalls['proxy']['median'])} proxy mode's")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--emulate", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--poll-master", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.emulate:
        emulate(args.emulate)
        return 0
    if args.poll_master:
        poll_master(args.poll_master)
        return 0
    require()
    data: dict = {"trials": args.trials, "cases": {}}
    try:
        for mode, cases in (("proxy", ["proxy"]), ("nat", ["nat", "nat-retarget"])):
            converge(mode)
            for case in cases:
                for n in range(args.trials):
                    got = trial(case)
                    data["cases"].setdefault(case, []).append(got)
                    fed = f"{got['master_back']:.2f} s" if got["master_back"] is not None else "never"
                    print(
                        f"{case} trial {n + 1}: stall {got['stall']:.3f} s, reset {got['reset']}, master fed {fed}",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        # Printed before the lab is converged back (that may fail on its own);
        # only a complete run replaces the saved results.
        try:
            complete = sum(map(len, data["cases"].values())) == 3 * args.trials
            results.save("nat_failover" if complete else "nat_failover.partial", data, vars(args))
            report(data)
        finally:
            converge_back()
    return 0


if __name__ == "__main__":
    sys.exit(main())
