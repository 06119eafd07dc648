#!/usr/bin/env python3
"""Three-path benchmark for the mirror's relay (proxy mode with TLS, where
the relay ends the switches' TLS; the benchmark runs it in plain TCP to
show what relaying costs), in one run:

  (a) switch emulator -> controller, directly;
  (b) switch emulator -> HAProxy -> controller;
  (c) switch emulator -> relay -> HAProxy (PROXY v2) -> controller, with
      every PACKET_IN copied to a master over the shadow session.

Without TLS the mirror takes its copies from the kernel instead, off the
path: `make bench-mirror` (capture.py --path proxy) measures that.

It reports, as the median and spread of --runs rounds (paths interleaved in
each round, so machine noise hits all three alike):

  - OpenFlow messages per second for 128-byte PACKET_INs, one message per
    write and in bulk (64 messages per write);
  - the round-trip latency, p50 and p99, at a fixed 10k msg/s (the
    controller answers each PACKET_IN with a PACKET_OUT);
  - memory per session (RSS growth of HAProxy and of the sidecar over
    --sessions idle switch sessions);
  - path (c)'s one-message-per-write rate with the master frozen by SIGSTOP.

With --against REV, a fourth path (p) runs the sidecar as it was at the
git revision REV, interleaved with the others, and the table adds (c)
against (p): what a change to the sidecar costs, measured in one run.

Everything runs on loopback in a throwaway container of the lab image
(HAProxy and Python 3.11 as the LBs have them), with no network at all.

Usage (after `make setup`):  make bench-relay  [RUNS=5] [AGAINST=REV]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from benchlib import ROOT, results
from benchlib.conversation import (
    BACKUP_HANDSHAKE,
    BARRIER,
    COMMAND_LEN,
    HELLO,
    MESSAGE,
    PACKET_IN,
    PACKET_OUT,
    SWITCH_HANDSHAKE,
    command,
    read_command,
    recv_exact,
)
from benchlib.image import run_inside
from benchlib.stats import spread

CONTROLLER, MASTER, HAPROXY_DIRECT, HAPROXY_PROXY, SIDECAR, METRICS = 7001, 7002, 7010, 7011, 7020, 7030
PATHS = {"a": CONTROLLER, "b": HAPROXY_DIRECT, "c": SIDECAR}
NAMES = {"a": "(a) direct", "b": "(b) HAProxy", "c": "(c) sidecar + HAProxy"}
# The sidecars' metrics pages, by path; (p) is the sidecar at --against.
SIDECARS = {"c": METRICS}
AGAINST = "/against"  # where the container sees that revision's tree
OUTPUT = "/out"  # where the container writes its data
BULK = 64
LATENCY_WARMUP = 200
# The frozen-master comparison sends this many times more, so that most of
# it runs after the master's socket buffers have filled.
FROZEN_SCALE = 5


# -- the peers ------------------------------------------------------------
def serve_controller() -> None:
    """A backup controller: its handshake, then a command from the switch
    emulator: sink N bytes then answer with a BARRIER_REQUEST, echo every
    PACKET_IN with a PACKET_OUT, or idle."""

    def session(conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            conn.sendall(BACKUP_HANDSHAKE)
            recv_exact(conn, len(HELLO) + len(SWITCH_HANDSHAKE))
            mode, count = read_command(recv_exact(conn, COMMAND_LEN))
            if mode == b"T":
                left, buf = count, bytearray(1 << 20)
                while left > 0:
                    got = conn.recv_into(buf, min(left, len(buf)))
                    if not got:
                        return
                    left -= got
                conn.sendall(BARRIER)
            elif mode == b"L":
                while True:
                    recv_exact(conn, MESSAGE)
                    conn.sendall(PACKET_OUT)
            else:
                conn.recv(1)
        except (ConnectionError, OSError):
            pass
        finally:
            conn.close()

    server = socket.create_server(("127.0.0.1", CONTROLLER), backlog=1024)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=session, args=(conn,), daemon=True).start()


def serve_master() -> None:
    """The master controller: says HELLO and reads whatever it is sent."""

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(HELLO)
        try:
            while await reader.read(1 << 20):
                pass
        except ConnectionError:
            pass
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(session, "127.0.0.1", MASTER, backlog=1024)
        await server.serve_forever()

    asyncio.run(main())


# -- the switch emulator ----------------------------------------------------
def switch(port: int, mode: bytes, count: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(HELLO)
    recv_exact(sock, len(BACKUP_HANDSHAKE))
    sock.sendall(SWITCH_HANDSHAKE + command(mode, count))
    return sock


def metric(name: str, path: str = "c") -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{SIDECARS[path]}/metrics", timeout=5) as page:
        for line in page.read().decode().splitlines():
            if line.startswith(name + " "):
                return int(float(line.split()[1]))
    raise KeyError(name)


def wait_for_master(sessions: int, path: str = "c") -> None:
    deadline = time.monotonic() + 10
    while metric("sdn_ha_mirror_master_connected", path) < sessions:
        if time.monotonic() > deadline:
            raise RuntimeError("the sidecar's shadow sessions did not come up")
        time.sleep(0.02)


def throughput(path: str, messages: int, per_write: int, freeze: int = 0) -> float:
    """Messages per second until the controller has every byte; `freeze`
    is a process to hold in SIGSTOP meanwhile (the master)."""
    sock = switch(PATHS[path], b"T", messages * MESSAGE)
    if path in SIDECARS:
        wait_for_master(1, path)
    if freeze:
        os.kill(freeze, signal.SIGSTOP)
    chunk = PACKET_IN * per_write
    writes = messages // per_write
    send = sock.sendall
    start = time.perf_counter()
    for _ in range(writes):
        send(chunk)
    recv_exact(sock, 8)
    elapsed = time.perf_counter() - start
    if freeze:
        os.kill(freeze, signal.SIGCONT)
    sock.close()
    return messages / elapsed


def latency(path: str, messages: int, rate: int) -> tuple[float, float]:
    """p50 and p99 round trips in microseconds, sending at a fixed rate."""
    sock = switch(PATHS[path], b"L", 0)
    if path in SIDECARS:
        wait_for_master(1, path)
    for _ in range(LATENCY_WARMUP):
        sock.sendall(PACKET_IN)
        recv_exact(sock, MESSAGE)
    interval = 1e9 / rate
    rtts = []
    now = time.perf_counter_ns
    next_send = now()
    for _ in range(messages):
        while now() < next_send:
            pass
        sent = now()
        sock.sendall(PACKET_IN)
        recv_exact(sock, MESSAGE)
        rtts.append((now() - sent) / 1000)
        next_send += interval
    sock.close()
    q = statistics.quantiles(rtts, n=100)
    return q[49], q[98]


def wait_for_ports(*ports: int) -> None:
    deadline = time.monotonic() + 15
    for port in ports:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nothing listens on port {port}") from None
                time.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def memory(path: str, sessions: int, pid: int) -> float:
    """KiB of RSS per idle switch session in the process `pid`."""
    before = rss_kib(pid)
    socks = [switch(PATHS[path], b"I", 0) for _ in range(sessions)]
    if path == "c":
        wait_for_master(sessions)
    time.sleep(0.5)
    after = rss_kib(pid)
    for sock in socks:
        sock.close()
    time.sleep(0.5)
    return (after - before) / sessions


# -- the run ------------------------------------------------------------------
HAPROXY_CFG = f"""
global
    maxconn 480
defaults
    mode tcp
    timeout connect 3s
    timeout client 1m
    timeout server 1m
frontend direct
    bind 127.0.0.1:{HAPROXY_DIRECT}
    default_backend controllers
frontend behind_sidecar
    bind 127.0.0.1:{HAPROXY_PROXY} accept-proxy
    default_backend controllers
backend controllers
    server ctl 127.0.0.1:{CONTROLLER}
"""


def inside(args: argparse.Namespace) -> None:
    """Measure, in the container, and write the data to OUTPUT."""
    me = [sys.executable, __file__]
    cfg = Path(tempfile.mkdtemp()) / "haproxy.cfg"
    cfg.write_text(HAPROXY_CFG)

    def sidecar(tree: Path, port: int, metrics: int) -> subprocess.Popen:
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "sdn_ha_mirror", "--listen", f"127.0.0.1:{port}"),
                *("--primary", f"127.0.0.1:{HAPROXY_PROXY}", "--master", f"127.0.0.1:{MASTER}"),
                *("--metrics", f"127.0.0.1:{metrics}", "--log-level", "warning"),
            ],
            env=dict(os.environ, PYTHONPATH=str(tree / "sidecar")),
        )

    procs = {
        "controller": subprocess.Popen([*me, "--serve", "controller"]),
        "master": subprocess.Popen([*me, "--serve", "master"]),
        "haproxy": subprocess.Popen(["haproxy", "-db", "-f", str(cfg)]),
        "sidecar": sidecar(ROOT, SIDECAR, METRICS),
    }
    if args.against:
        PATHS["p"], SIDECARS["p"] = SIDECAR + 1, METRICS + 1
        NAMES["p"] = f"(p) sidecar at {args.against} + HAProxy"
        procs["previous"] = sidecar(Path(AGAINST), SIDECAR + 1, METRICS + 1)
    sent = {
        "one": args.messages,
        "steady": args.messages * FROZEN_SCALE,
        "frozen": args.messages * FROZEN_SCALE,
        "bulk": args.messages * BULK,
    }
    # "PATH PATTERN": one value per round (messages/s, or microseconds for p50 and p99)
    values: dict[str, list[float]] = {}
    cpu_us: dict[str, list[float]] = {}  # "PATH PATTERN": the sidecar's CPU per message, microseconds
    drops: dict[str, int] = {}
    try:
        wait_for_ports(CONTROLLER, MASTER, HAPROXY_DIRECT, HAPROXY_PROXY, *PATHS.values(), *SIDECARS.values())
        for round_ in range(args.runs):
            print(f"round {round_ + 1}/{args.runs}", file=sys.stderr, flush=True)
            # Every other round runs the paths in the reverse order, so that
            # what one path leaves behind (a master still draining its
            # copies, a warmed cache) does not always favour the next.
            for path in list(PATHS) if round_ % 2 == 0 else list(PATHS)[::-1]:
                for pattern, trial in (
                    ("one", lambda p=path: throughput(p, args.messages, 1)),
                    # The same, long enough for a steady state, then with the master frozen.
                    ("steady", lambda p=path: throughput(p, args.messages * FROZEN_SCALE, 1)),
                    (
                        "frozen",
                        lambda p=path: throughput(p, args.messages * FROZEN_SCALE, 1, freeze=procs["master"].pid),
                    ),
                    ("bulk", lambda p=path: throughput(p, args.messages * BULK, BULK)),
                    ("latency", lambda p=path: latency(p, args.latency_messages, args.rate)),
                ):
                    if pattern in ("steady", "frozen") and path != "c":
                        continue
                    dropped = metric("sdn_ha_mirror_dropped_messages_total")
                    sidecar_pid = procs["previous" if path == "p" else "sidecar"].pid
                    cpu = cpu_seconds(sidecar_pid)
                    value = trial()
                    if path in SIDECARS and pattern in sent:
                        # CPU per message: far steadier than a rate on a shared machine.
                        used = (cpu_seconds(sidecar_pid) - cpu) * 1e6 / sent[pattern]
                        cpu_us.setdefault(f"{path} {pattern}", []).append(used)
                    drops[pattern] = drops.get(pattern, 0) + metric("sdn_ha_mirror_dropped_messages_total") - dropped
                    if pattern == "latency":
                        values.setdefault(f"{path} p50", []).append(value[0])
                        values.setdefault(f"{path} p99", []).append(value[1])
                    else:
                        values.setdefault(f"{path} {pattern}", []).append(value)
        print(f"memory: {args.sessions} idle sessions per path", file=sys.stderr, flush=True)
        memory_kib = {
            "b haproxy": memory("b", args.sessions, procs["haproxy"].pid),
            "c sidecar": memory("c", args.sessions, procs["sidecar"].pid),
            "c haproxy": memory("c", args.sessions, procs["haproxy"].pid),
        }
        identity = metric("sdn_ha_mirror_relayed_messages_total") == metric(
            "sdn_ha_mirror_mirrored_messages_total"
        ) + metric("sdn_ha_mirror_filtered_messages_total") + metric("sdn_ha_mirror_dropped_messages_total")
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait(timeout=10)
    sent["latency"] = args.latency_messages + LATENCY_WARMUP
    data = {
        "names": NAMES,
        "values": values,
        "cpu_us": cpu_us,
        "drops": drops,
        "sent": sent,
        "memory_kib": memory_kib,
        "identity": identity,
        "cpus": os.cpu_count(),
    }
    Path(OUTPUT, "relay.json").write_text(json.dumps(data))


def report(record: dict) -> None:
    """The tables, from the data inside() measured."""
    data, args = record["data"], record["arguments"]
    names, values, cpu_us = data["names"], data["values"], data["cpu_us"]

    def rate(path: str, pattern: str) -> list[float]:
        return [v / 1000 for v in values[f"{path} {pattern}"]]

    def median(path: str, pattern: str) -> float:
        return statistics.median(values[f"{path} {pattern}"])

    def ratio(path: str, pattern: str) -> float:
        return median(path, pattern) / median("b", pattern)

    runs = args["runs"]
    print(f"\nMirror sidecar benchmark: {runs} rounds, 128-byte PACKET_INs, loopback, {data['cpus']} CPUs")
    print("median (min-max) of the rounds; ratios against (b) of the same run\n")
    print("| Path | One msg per write, k msg/s | x (b) | Bulk (64 per write), k msg/s | x (b) |")
    print("|---|---|---|---|---|")
    for path, name in names.items():
        print(
            f"| {name} | {spread(rate(path, 'one'), '{:.0f}')} | {ratio(path, 'one'):.2f} "
            f"| {spread(rate(path, 'bulk'), '{:.0f}')} | {ratio(path, 'bulk'):.2f} |"
        )
    print(f"\nRound trip at {args['rate'] // 1000}k msg/s, microseconds ({args['latency_messages']} per round)\n")
    print("| Path | p50 | p99 |")
    print("|---|---|---|")
    for path, name in names.items():
        p50, p99 = (spread(values[f"{path} {q}"], "{:.0f}") for q in ("p50", "p99"))
        print(f"| {name} | {p50} | {p99} |")
    added50, added99 = (median("c", q) - median("b", q) for q in ("p50", "p99"))
    print(f"\n(c) adds {added50:.0f} us at p50 and {added99:.0f} us at p99 over (b)")
    if "p" in names:
        against = args["against"]

        def cpu_ratio(pattern: str) -> float:
            return statistics.median(cpu_us[f"c {pattern}"]) / statistics.median(cpu_us[f"p {pattern}"])

        print(
            f"(c) against (p) at {against}: one msg per write {median('c', 'one') / median('p', 'one'):.2f}x,"
            f" bulk {median('c', 'bulk') / median('p', 'bulk'):.2f}x;"
            f" round trip {median('c', 'p50') - median('p', 'p50'):+.0f} us at p50,"
            f" {median('c', 'p99') - median('p', 'p99'):+.0f} us at p99;"
            f" sidecar CPU per message {cpu_ratio('one'):.2f}x one per write, {cpu_ratio('bulk'):.2f}x bulk"
        )
    stalled = [f / s for f, s in zip(values["c frozen"], values["c steady"], strict=True)]
    print(
        f"\nMaster frozen (SIGSTOP), (c) one msg per write, {data['sent']['frozen']} messages:"
        f" {spread(rate('c', 'frozen'), '{:.0f}')} k msg/s; master reading, just before:"
        f" {spread(rate('c', 'steady'), '{:.0f}')} k msg/s; ratio {spread(stalled, '{:.2f}')}x"
    )
    for path in names:
        per_message = {k.split()[1]: v for k, v in cpu_us.items() if k.split()[0] == path}
        if per_message:
            print(
                f"Sidecar CPU per relayed message in ({path}), microseconds: "
                + "; ".join(f"{k} {spread(v, '{:.2f}')}" for k, v in per_message.items())
            )
    print(
        "Copies dropped by the sidecar, of the PACKET_INs sent through (c): "
        + "; ".join(f"{k} {data['drops'][k]} of {n * runs}" for k, n in data["sent"].items())
        + f"; relayed = mirrored + filtered + dropped: {data['identity']}"
    )
    mem = data["memory_kib"]
    print(
        f"\nMemory per idle session ({args['sessions']} sessions): HAProxy {mem['b haproxy']:.1f} KiB in (b);"
        f" in (c) sidecar {mem['c sidecar']:.1f} KiB + HAProxy {mem['c haproxy']:.1f} KiB"
        f" (the sidecar's copy queue is bounded at 1 MiB per session under load)"
    )


def outside(args: argparse.Namespace) -> int:
    """Run this script inside a throwaway container of the lab image, then
    save its data and report it."""
    arguments = [
        *("--runs", str(args.runs), "--messages", str(args.messages), "--sessions", str(args.sessions)),
        *("--latency-messages", str(args.latency_messages), "--rate", str(args.rate)),
    ]
    with tempfile.TemporaryDirectory() as tree, tempfile.TemporaryDirectory() as output:
        volumes = {}
        if args.against:
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.against, "sidecar"], capture_output=True)
            if archive.returncode:
                print(f"--against {args.against}: {archive.stderr.decode().strip()}", file=sys.stderr)
                return 1
            subprocess.run(["tar", "-x", "-C", tree], input=archive.stdout, check=True)
            arguments += ["--against", args.against]
            volumes[tree] = AGAINST
        code = run_inside("relay.py", arguments, volumes=volumes, output=(output, OUTPUT))
        if code:
            return code
        data = json.loads(Path(output, "relay.json").read_text())
    report(results.load("relay", results.save("relay", data, vars(args))))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--messages", type=int, default=100_000, help="per one-per-write trial; bulk sends 64x")
    parser.add_argument("--latency-messages", type=int, default=20_000)
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--against", metavar="REV", help="also run the sidecar of this git revision, as path (p)")
    parser.add_argument("--report", action="store_true", help="print the report of the saved results again")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve", choices=["controller", "master"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "controller":
        serve_controller()
    elif args.serve == "master":
        serve_master()
    elif args.report:
        report(results.load("relay"))
    elif args.inside:
        inside(args)
    else:
        return outside(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
