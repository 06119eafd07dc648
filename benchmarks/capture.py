#!/usr/bin/env python3
"""What the mirror's kernel capture costs the switch's data path, in either mode.

Three network namespaces in a throwaway container of the lab image, joined
by veth pairs, addresses from 198.18.0.0/15 only:

  sw   the switch emulator (this script's main process enters it per socket);
  lb   holds the VIP on its switch-facing veth and forwards. --path proxy:
       HAProxy (TCP mode) listens on VIP:6653 and connects to the
       controller, as the product's proxy mode runs it. --path nat: VIP:6653
       is DNATed to the controller with nftables and conntrack
       reverse-translates the replies, as NAT mode does. With the capture
       on, the mirror daemon (`python3 -m sdn_ha_mirror --capture lbs ...`)
       runs here on the switch-facing veth;
  ctl  the backup controller (answers each PACKET_IN with a PACKET_OUT of the
       same xid) and the master (says HELLO, counts the PACKET_IN copies).

Each trial runs in each mode, the order alternating from round to round,
for --runs rounds:

  direct  (a) the switch reaches the controller's own address: the lb only
          routes;
  off     (b) the switch reaches the VIP, through HAProxy or the DNAT, and
          no mirror runs;
  on      (c) the same with a fresh capture daemon feeding the master, at
          the default priority as the mirror role runs it.

With --nice N, one more mode runs the daemon at nice N under SCHED_BATCH
(the role's `mirror_capture_nice`). With --controls, two more tell the
path's cost from the CPU's: "ring" holds the daemon's packet ring and filter
but never reads a frame (what the kernel side costs the data path), and
"cpu" runs no capture but a process that burns the CPU share the daemon and
the master took in the last capture-on trial of that kind (what that much
CPU costs, whoever spends it).

128-byte PACKET_INs. The trials:

  - lat10k, lat50k: round trips, p50 and p99, at 10k and 50k msg/s offered,
    one message per write. Open loop: a forked sender paces the writes
    (sleeping, not spinning, between them: the machine has 2 CPUs), the
    parent receives and timestamps the replies, matched by xid; a round trip
    runs from just before the write to the read that returned the reply;
  - full: --full-messages as fast as one write per message allows,
    messages/s until the controller has every byte;
  - bulk: the same with 64 messages per write;
  - frozen (capture on only): full, with the master stopped (SIGSTOP)
    from before the first message until the controller has the last, against
    the full trial of the same round: what a master that reads nothing costs
    the switches;
  - with the capture on: PACKET_INs the switch sent, seen whole by the mirror
    (mirrored + dropped), received by the master, the mirror's dropped,
    unseen-bytes and kernel-drop counters, whether sent bytes = bytes seen
    whole + unseen bytes, and the daemon's CPU seconds per 100k messages.

The report is printed whatever happened, with the trials that completed.
Each target is judged on the rounds' paired values (on against off of the
same round): met when at least 80 % of the rounds meet it, missed when at
least 80 % miss it, and otherwise too noisy to support either claim. The
exit status is 1 when a target is too noisy or lacks data.

Usage (after `make setup`):  make bench-mirror  [RUNS=5]   (--path proxy)
                             make bench-capture [RUNS=5]   (--path nat --controls)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import functools
import json
import os
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from array import array
from fractions import Fraction
from pathlib import Path

from benchlib import ROOT
from benchlib import results as saved
from benchlib.conversation import (
    BACKUP_HANDSHAKE,
    BARRIER,
    BODY,
    COMMAND_LEN,
    HELLO,
    MESSAGE,
    PACKET_IN,
    PACKET_IN_HEAD,
    PACKET_OUT_HEAD,
    SWITCH_HANDSHAKE,
    command,
    read_command,
    recv_exact,
)
from benchlib.image import run_inside
from benchlib.stats import spread as _spread
from sdn_ha_mirror.openflow import OFPT

OUTPUT = "/out"  # where the container writes its data
spread = functools.partial(_spread, sep=" to ", empty="-")  # values may be negative
VIP, SWITCH_ADDR, LB_SW, LB_CTL, CTL = "198.18.250.100", "198.18.250.2", "198.18.250.1", "198.18.251.1", "198.18.251.2"
OF_PORT, MASTER, MASTER_STATS, METRICS = 6653, 6654, 6655, 9310
CAPTURE_IFACE = "lbs"
WARMUP = 200  # closed-loop round trips before each timed latency trial
SKIP = 1000  # first open-loop messages left out of the percentiles (ramp-up)
TRIALS = ("lat10k", "lat50k", "full", "bulk", "frozen")
MODES = ("direct", "off", "on")  # and "relay" with --relay, "nice" with --nice, "ring" and "cpu" with --controls
DAEMONS = ("on", "relay", "nice")  # the modes that run the mirror daemon
FROZEN_MODES = ("on", "relay")  # the frozen trial runs in these, against the full trial of the same mode
RELAY_PORT, BEHIND_RELAY = 6656, 16653  # --relay: the relay's port on the VIP, HAProxy's accept-proxy port
BULK = 64  # messages per write in the bulk trial
AGREE = Fraction(4, 5)  # the share of rounds that must agree for a target's verdict (exact: 4 of 5 is 4/5)
SPIN_PERIOD = 0.004  # the CPU control sleeps this long between busy spells


# Bytes and messages of the switch's stream before its first PACKET_IN:
# HELLO, FEATURES_REPLY, MULTIPART_REPLY and the command (filtered by the mirror).
PREAMBLE_BYTES = len(HELLO) + len(SWITCH_HANDSHAKE) + COMMAND_LEN
PREAMBLE_MESSAGES = 4


# -- network namespaces -----------------------------------------------------
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def netns(name: str):
    """Run the block in network namespace `name` (this thread only); sockets
    made in it stay there."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {name}: {os.strerror(err)}")
        yield
    finally:
        _libc.setns(home, CLONE_NEWNET)
        os.close(target)
        os.close(home)


def sh(*argv: str, stdin: str | None = None) -> None:
    subprocess.run(argv, input=stdin, text=True, check=True, timeout=30)


NFT = f"""table ip b {{
    chain pre {{
        type nat hook prerouting priority dstnat;
        ip daddr {VIP} tcp dport {OF_PORT} dnat to {CTL};
    }}
}}
"""


HAPROXY_CFG = f"""
global
    maxconn 400
defaults
    mode tcp
    timeout connect 3s
    timeout client 1m
    timeout server 1m
frontend openflow
    bind {VIP}:{OF_PORT}
    default_backend controllers
frontend behind_relay
    bind 127.0.0.1:{BEHIND_RELAY} accept-proxy
    default_backend controllers
backend controllers
    server ctl {CTL}:{OF_PORT}
"""


def build_topology(path: str) -> None:
    for ns in ("sw", "lb", "ctl"):
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    for left, ns_left, right in (("sw0", "sw", CAPTURE_IFACE), ("ctl0", "ctl", "lbc")):
        sh("ip", "link", "add", left, "type", "veth", "peer", "name", right)
        sh("ip", "link", "set", left, "netns", ns_left)
        sh("ip", "link", "set", right, "netns", "lb")
    for ns, dev, addrs in (
        ("sw", "sw0", [f"{SWITCH_ADDR}/24"]),
        ("lb", CAPTURE_IFACE, [f"{LB_SW}/24", f"{VIP}/24"]),
        ("lb", "lbc", [f"{LB_CTL}/24"]),
        ("ctl", "ctl0", [f"{CTL}/24"]),
    ):
        for addr in addrs:
            sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")
    sh("ip", "-n", "sw", "route", "add", "default", "via", LB_SW)
    sh("ip", "-n", "ctl", "route", "add", "default", "via", LB_CTL)
    # /proc/sys is read-only in the container: remount it in ip netns exec's
    # own mount namespace, so the container's stays as it is.
    sh("ip", "netns", "exec", "lb", "sh", "-c", "mount -o remount,rw /proc/sys && sysctl -qw net.ipv4.ip_forward=1")
    if path == "nat":
        sh("ip", "netns", "exec", "lb", "nft", "-f", "-", stdin=NFT)


# -- the peers (in the ctl namespace) ----------------------------------------
def serve_controller() -> None:
    """The backup controller: its handshake, then the switch's command: sink
    N bytes, send a BARRIER_REQUEST and wait for the switch to close (T), or
    answer every PACKET_IN with a PACKET_OUT of the same xid (L), whatever
    arrived in one read answered in one write."""

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
                # The switch ends the session, once the capture has settled: a
                # session that ends at once loses the mirror's last copies
                # (its queue is not flushed when a captured session closes).
                conn.recv(1)
            elif mode == b"L":
                pending = b""
                while data := conn.recv(1 << 16):
                    pending += data
                    whole = len(pending) - len(pending) % MESSAGE
                    if whole:
                        conn.sendall(
                            b"".join(
                                PACKET_OUT_HEAD + pending[off + 4 : off + 8] + BODY for off in range(0, whole, MESSAGE)
                            )
                        )
                        pending = pending[whole:]
        except (ConnectionError, OSError):
            pass
        finally:
            conn.close()

    server = socket.create_server((CTL, OF_PORT), backlog=128)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=session, args=(conn,), daemon=True).start()


def serve_ring() -> None:
    """The ring control (in the lb namespace): the daemon's packet socket,
    filter and ring, every block handed back unread."""
    from sdn_ha_mirror.capture import PacketRing

    ring = PacketRing(CAPTURE_IFACE, VIP, [OF_PORT], 32 << 20)
    poller = select.epoll()
    poller.register(ring.fileno(), select.EPOLLIN)
    while True:
        poller.poll(1)
        while (block := ring.ready()) is not None:
            ring.release(block)


def serve_spin(share: float) -> None:
    """The CPU control: busy for `share` of the time, in spells between
    SPIN_PERIOD sleeps, as a daemon woken by the ring would be."""
    busy = SPIN_PERIOD * share / (1 - share)
    while True:
        time.sleep(SPIN_PERIOD)
        end = time.perf_counter() + busy
        while time.perf_counter() < end:
            pass


def serve_master() -> None:
    """The master: says HELLO, counts the PACKET_INs it is sent (all sessions),
    and tells the count to whoever connects to MASTER_STATS."""
    total = [0]

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(HELLO)
        buf = b""
        try:
            while data := await reader.read(1 << 20):
                buf += data
                off, n = 0, len(buf)
                while n - off >= 8:
                    length = int.from_bytes(buf[off + 2 : off + 4], "big")
                    if length < 8 or off + length > n:
                        break
                    if buf[off + 1] == OFPT.PACKET_IN:
                        total[0] += 1
                    off += length
                buf = buf[off:]
        except ConnectionError:
            pass
        writer.close()

    async def stats(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"%d\n" % total[0])
        await writer.drain()
        writer.close()

    async def main() -> None:
        servers = [
            await asyncio.start_server(session, CTL, MASTER, backlog=128),
            await asyncio.start_server(stats, CTL, MASTER_STATS),
        ]
        await asyncio.gather(*(s.serve_forever() for s in servers))

    asyncio.run(main())


# -- the switch emulator and the probes (main process) -----------------------
def switch(mode: bytes, count: int, target: tuple[str, int] = (VIP, OF_PORT)) -> socket.socket:
    with netns("sw"):
        sock = socket.create_connection(target, timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(HELLO)
    recv_exact(sock, len(BACKUP_HANDSHAKE))
    sock.sendall(SWITCH_HANDSHAKE + command(mode, count))
    return sock


def metrics() -> dict[str, float]:
    with netns("lb"):
        page = urllib.request.urlopen(f"http://127.0.0.1:{METRICS}/metrics", timeout=5)
    with page:
        values = {}
        for line in page.read().decode().splitlines():
            if line and not line.startswith("#") and "{" not in line:
                name, value = line.split()
                values[name] = float(value)
        return values


def m(values: dict[str, float], name: str) -> int:
    return int(values.get(f"sdn_ha_mirror_{name}", 0))


def master_count() -> int:
    with netns("ctl"):
        sock = socket.create_connection((CTL, MASTER_STATS), timeout=5)
    with sock:
        return int(recv_exact(sock, 1) + sock.recv(64))


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


def wait_for_port(ns: str, host: str, port: int, proc: subprocess.Popen) -> None:
    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            with netns(ns):
                socket.create_connection((host, port), timeout=1).close()
            return True
        except OSError:
            return False

    wait_until(up, 15, f"{host}:{port} in {ns}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class Capture:
    """A fresh mirror daemon in the lb namespace: the capture, or with
    `relay` the relay in front of HAProxy (the TLS path, in plain TCP)."""

    LOG = Path("/tmp/capture-daemon.log")

    def __init__(self, nice: int = 0, relay: bool = False) -> None:
        self.master_before = 0  # the master's count before this trial
        env = dict(os.environ, PYTHONPATH=str(ROOT / "sidecar"))

        def schedule() -> None:  # as the unit's Nice= and CPUSchedulingPolicy=batch do
            if nice:
                os.setpriority(os.PRIO_PROCESS, 0, nice)
                os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))

        if relay:
            path = ("--listen", f"{VIP}:{RELAY_PORT}", "--primary", f"127.0.0.1:{BEHIND_RELAY}")
        else:
            path = ("--capture", CAPTURE_IFACE, "--listen", f"{VIP}:{OF_PORT}")
        with self.LOG.open("w") as log:
            self.proc = subprocess.Popen(
                [
                    *("ip", "netns", "exec", "lb", sys.executable, "-m", "sdn_ha_mirror", *path),
                    *("--master", f"{CTL}:{MASTER}", "--metrics", f"127.0.0.1:{METRICS}", "--log-level", "info"),
                ],
                env=env,
                stderr=log,
                preexec_fn=schedule,
            )
        try:
            wait_for_port("lb", "127.0.0.1", METRICS, self.proc)
            if not relay:
                wait_until(lambda: m(metrics(), "capture_active") == 1, 10, "the capture to see the VIP")
        except BaseException as exc:
            stop(self.proc)
            raise RuntimeError(f"{exc}; the daemon's log: {self.LOG.read_text()[-2000:]}") from exc

    def master_up(self) -> None:
        wait_until(lambda: m(metrics(), "master_connected") == 1, 10, "the shadow session to the master")

    def settle(self, stream_bytes: int) -> dict[str, float]:
        """The counters once the capture has taken everything: every byte of the
        switch's stream seen whole or counted unseen, and the master holding
        every copy; or, short of that, once nothing has changed for 2 s."""
        deadline = time.monotonic() + 20
        last, quiet_since = None, time.monotonic()
        while True:
            values, got = metrics(), master_count()
            accounted = m(values, "relayed_bytes_total") + m(values, "unseen_bytes_total")
            delivered = got - self.master_before >= m(values, "mirrored_messages_total")
            done = accounted == stream_bytes and delivered
            key = (m(values, "capture_packets_total"), m(values, "relayed_messages_total"), got)
            if key != last:
                last, quiet_since = key, time.monotonic()
            if (done and time.monotonic() - quiet_since > 0.3) or time.monotonic() - quiet_since > 2:
                return values
            if time.monotonic() > deadline:
                print("  (the capture had not settled after 20 s)", file=sys.stderr, flush=True)
                return values
            time.sleep(0.1)

    def close(self) -> None:
        stop(self.proc)


def echo_switch(target: tuple[str, int]) -> socket.socket:
    """A switch session the controller echoes, warmed up closed-loop."""
    sock = switch(b"L", 0, target)
    for _ in range(WARMUP):
        sock.sendall(PACKET_IN)
        recv_exact(sock, MESSAGE)
    return sock


def round_trips(sock: socket.socket, rate: int, count: int) -> dict:
    """Open loop at `rate` msg/s: p50 and p99 (microseconds), achieved rate, replies missing."""
    sock.settimeout(10)  # before the fork: both sides see the same (non-blocking) file
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the sender
        code = 1
        try:
            os.close(read_fd)
            _libc.prctl(29, 1, 0, 0, 0)  # PR_SET_TIMERSLACK: 1 ns, so short sleeps stay short
            sent = array("q", bytes(8 * count))
            clock, interval, send = time.monotonic_ns, 1e9 / rate, sock.sendall
            start = clock() + 1_000_000
            for i in range(count):
                ahead = start + int(i * interval) - clock()
                if ahead > 0:
                    time.sleep(ahead / 1e9)
                sent[i] = clock()
                send(PACKET_IN_HEAD + i.to_bytes(4, "big") + BODY)
            with os.fdopen(write_fd, "wb") as out:
                out.write(sent.tobytes())
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    received = array("q", bytes(8 * count))
    got, pending = 0, b""
    deadline = time.monotonic() + count / rate + 15
    clock = time.monotonic_ns
    try:
        while got < count and time.monotonic() < deadline:
            data = sock.recv(1 << 16)
            now = clock()
            if not data:
                break
            pending += data
            whole = len(pending) - len(pending) % MESSAGE
            for off in range(0, whole, MESSAGE):
                received[int.from_bytes(pending[off + 4 : off + 8], "big")] = now
            got += whole // MESSAGE
            pending = pending[whole:]
    except (TimeoutError, OSError) as exc:
        print(f"  receiver: {exc!r}", file=sys.stderr, flush=True)
    with os.fdopen(read_fd, "rb") as pipe:
        raw = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status or len(raw) != 8 * count:
        raise RuntimeError(f"the sender failed (status {status})")
    sent = array("q")
    sent.frombytes(raw)
    rtts = sorted((received[i] - sent[i]) / 1000 for i in range(SKIP, count) if received[i])
    q = statistics.quantiles(rtts, n=100)
    return {
        "p50": q[49],
        "p99": q[98],
        "rate": (count - 1) / ((sent[count - 1] - sent[0]) / 1e9),
        "missing": count - got,
        "sent": count + WARMUP,
    }


def full_load(sock: socket.socket, count: int, per_write: int = 1) -> dict:
    """As fast as the path takes them: messages per second until the
    controller has every byte of `count` messages, `per_write` at a time."""
    sock.settimeout(60)
    send, chunk = sock.sendall, PACKET_IN * per_write
    start = time.perf_counter()
    for _ in range(count // per_write):
        send(chunk)
    if count % per_write:
        send(PACKET_IN * (count % per_write))
    recv_exact(sock, 8)
    return {"rate": count / (time.perf_counter() - start), "sent": count}


# -- the run -------------------------------------------------------------------
def control(args: argparse.Namespace, kind: str, mode: str) -> subprocess.Popen | None:
    """The ring or CPU control process for this trial, running."""
    if mode == "ring":
        proc = subprocess.Popen(["ip", "netns", "exec", "lb", sys.executable, __file__, "--serve", "ring"])
        wait_until(
            lambda: proc.poll() is not None or "tpacket_rcv" in Path(f"/proc/{proc.pid}/net/ptype").read_text(),
            10,
            "the ring control's packet socket",
        )
    elif mode == "cpu":
        if kind not in args.shares:
            raise RuntimeError("no capture-on trial of this kind yet to take the CPU share from")
        proc = subprocess.Popen([sys.executable, __file__, "--serve", "spin", "--share", f"{args.shares[kind]:.4f}"])
    else:
        return None
    time.sleep(0.5)
    if proc.poll() is not None:
        raise RuntimeError(f"the {mode} control exited with {proc.returncode}")
    return proc


def messages(args: argparse.Namespace, kind: str) -> int:
    return args.bulk_messages if kind == "bulk" else args.full_messages


def trial(args: argparse.Namespace, kind: str, mode: str, master_pid: int) -> dict:
    capture = Capture(args.nice if mode == "nice" else 0, relay=mode == "relay") if mode in DAEMONS else None
    sock, controls, frozen = None, control(args, kind, mode), False
    target = {"direct": (CTL, OF_PORT), "relay": (VIP, RELAY_PORT)}.get(mode, (VIP, OF_PORT))
    started = time.monotonic()
    try:
        before = master_count()
        if capture:
            capture.master_before = before
        cpu = cpu_seconds(capture.proc.pid) if capture else 0.0
        master_cpu = cpu_seconds(master_pid)
        loaded = kind in ("full", "bulk", "frozen")
        sock = switch(b"T", messages(args, kind) * MESSAGE, target) if loaded else echo_switch(target)
        if capture:
            capture.master_up()
        if kind == "frozen":
            os.kill(master_pid, signal.SIGSTOP)
            frozen = True
        if loaded:
            result = full_load(sock, messages(args, kind), BULK if kind == "bulk" else 1)
            if frozen:
                os.kill(master_pid, signal.SIGCONT)
                frozen = False
        else:
            rate = 10_000 if kind == "lat10k" else 50_000
            count = args.messages_10k if kind == "lat10k" else args.messages_50k
            result = round_trips(sock, rate, count)
        if capture:
            sent = result["sent"]
            stream = PREAMBLE_BYTES + sent * MESSAGE
            values = capture.settle(stream)
            cpu = cpu_seconds(capture.proc.pid) - cpu
            if m(values, "relayed_bytes_total") + m(values, "unseen_bytes_total") != stream:
                # Copies lost at the end of the stream show only when the
                # switch's FIN says where the stream ended: close, then count.
                sock.close()
                sock = None
                wait_until(lambda: m(metrics(), "sessions") == 0, 10, "the captured session to end")
                values = capture.settle(stream)
            result.update(
                seen=m(values, "relayed_messages_total") - PREAMBLE_MESSAGES,
                mirrored=m(values, "mirrored_messages_total"),
                dropped=m(values, "dropped_messages_total"),
                filtered=m(values, "filtered_messages_total"),
                unseen=m(values, "unseen_bytes_total"),
                kernel_drops=m(values, "capture_kernel_drops_total"),
                packets=m(values, "capture_packets_total"),
                master=master_count() - before,
                identity=m(values, "relayed_messages_total")
                == m(values, "mirrored_messages_total")
                + m(values, "filtered_messages_total")
                + m(values, "dropped_messages_total"),
                unaccounted=stream - m(values, "relayed_bytes_total") - m(values, "unseen_bytes_total"),
                cpu=cpu * 100_000 / sent,
                master_cpu=(cpu_seconds(master_pid) - master_cpu) * 100_000 / sent,
            )
            result["lost"] = sent - result["master"]
            result["uncounted"] = result["lost"] - result["dropped"] - round(result["unseen"] / MESSAGE)
            if mode == "on" and kind != "frozen":
                spent = cpu + cpu_seconds(master_pid) - master_cpu
                args.shares[kind] = min(0.95, spent / (time.monotonic() - started))
                result["share"] = args.shares[kind]
        return result
    finally:
        if frozen:
            os.kill(master_pid, signal.SIGCONT)
        if controls is not None:
            stop(controls)
        if sock is not None:
            sock.close()
        if capture:
            capture.close()


def measure(args: argparse.Namespace, results: dict[tuple[str, str], list[dict]], master_pid: int) -> None:
    started = time.monotonic()
    for round_ in range(args.runs):
        modes = extra_modes(args, MODES)
        order = modes if round_ % 2 == 0 else modes[::-1]
        print(f"round {round_ + 1}/{args.runs} ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
        for kind in args.trials:
            for mode in order:
                if kind == "frozen" and mode not in FROZEN_MODES:
                    continue
                try:
                    result = trial(args, kind, mode, master_pid)
                except Exception as exc:
                    print(f"  {kind} capture {mode}: failed: {exc!r}", file=sys.stderr, flush=True)
                    results.setdefault(("errors", f"{kind} {mode}"), []).append({"error": repr(exc)})
                    continue
                result["round"] = round_
                results.setdefault((kind, mode), []).append(result)
                brief = ", ".join(
                    f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items() if k != "round"
                )
                print(f"  {kind} capture {mode}: {brief}", file=sys.stderr, flush=True)


def extra_modes(args: argparse.Namespace, base: tuple[str, ...] = ()) -> tuple[str, ...]:
    return (
        base
        + (("relay",) if args.relay else ())
        + (("nice",) if args.nice else ())
        + (("ring", "cpu") if args.controls else ())
    )


def daemon_modes(args: argparse.Namespace) -> list[str]:
    return [mode for mode in DAEMONS if mode == "on" or mode in extra_modes(args)]


def paired(results: dict, kind: str, key: str, combine, mode: str = "on") -> list[float]:
    """combine(mode's, off's) for each round that has both."""
    on = {r["round"]: r[key] for r in results.get((kind, mode), [])}
    off = {r["round"]: r[key] for r in results.get((kind, "off"), [])}
    return [combine(on[k], off[k]) for k in sorted(on.keys() & off.keys())]


def frozen_ratios(results: dict, mode: str = "on") -> list[float]:
    """The frozen trial's rate against the full trial's, per round, in one mode."""
    frozen = {r["round"]: r["rate"] for r in results.get(("frozen", mode), [])}
    full = {r["round"]: r["rate"] for r in results.get(("full", mode), [])}
    return [frozen[k] / full[k] for k in sorted(frozen.keys() & full.keys())]


def verdict(values: list[float], meets) -> str:
    """Met or missed when at least AGREE of the rounds say so; otherwise the
    run cannot support either claim."""
    if not values:
        return "no data"
    met = sum(bool(meets(v)) for v in values)
    if Fraction(met, len(values)) >= AGREE:
        return "met"
    if Fraction(len(values) - met, len(values)) >= AGREE:
        return "missed"
    return "too noisy"


def targets(args: argparse.Namespace, results: dict) -> list[tuple[str, list[float], str, str]]:
    """(target, the paired values per round, their format, verdict) for the path."""

    def added(kind: str, q: str) -> list[float]:
        return paired(results, kind, q, lambda on, off: on - off)

    def ratio(kind: str) -> list[float]:
        return paired(results, kind, "rate", lambda on, off: on / off)

    def lost(kind: str, key: str) -> list[float]:
        return [float(r[key]) for r in results.get((kind, "on"), [])]

    rows = []
    if args.path == "proxy":
        specs = [
            (
                "round trip p50 at 10k msg/s, on - off",
                added("lat10k", "p50"),
                "{:+.0f} us",
                lambda v: v <= 10,
                "<= +10 us",
            ),
            (
                "round trip p99 at 10k msg/s, on - off",
                added("lat10k", "p99"),
                "{:+.0f} us",
                lambda v: v <= 30,
                "<= +30 us",
            ),
            ("rate, one message per write, on / off", ratio("full"), "{:.2f}x", lambda v: v >= 0.95, ">= 0.95x"),
            ("rate, 64 messages per write, on / off", ratio("bulk"), "{:.2f}x", lambda v: v >= 0.95, ">= 0.95x"),
            (
                "master frozen / reading, one per write",
                frozen_ratios(results),
                "{:.2f}x",
                lambda v: v >= 0.95,
                ">= 0.95x",
            ),
        ]
    else:
        specs = [
            (
                "round trip p50 at 50k msg/s, on - off",
                added("lat50k", "p50"),
                "{:+.0f} us",
                lambda v: v <= 30,
                "<= +30 us",
            ),
            (
                "round trip p99 at 50k msg/s, on - off",
                added("lat50k", "p99"),
                "{:+.0f} us",
                lambda v: v <= 100,
                "<= +100 us",
            ),
            ("rate, one message per write, on / off", ratio("full"), "{:.2f}x", lambda v: v >= 0.80, ">= 0.80x"),
        ]
    specs += [
        (
            "copies lost at 50k msg/s offered (sent - master got)",
            lost("lat50k", "lost"),
            "{:.0f}",
            lambda v: v == 0,
            "0",
        ),
    ] + [
        (f"copies lost that no counter shows, {kind}", lost(kind, "uncounted"), "{:.0f}", lambda v: v == 0, "0")
        for kind in ("full", "bulk", "frozen")
        if kind in args.trials
    ]
    for name, values, fmt, meets, goal in specs:
        rows.append((f"{name} {goal}", values, fmt, verdict(values, meets)))
    return rows


def before_after(args: argparse.Namespace, results: dict) -> None:
    """The relay (p, the mirror on the path) against the capture (c, off it),
    each against HAProxy alone (b) of the same rounds."""

    def values(kind: str, key: str, mode: str, scale: float = 1) -> list[float]:
        return [r[key] * scale for r in results.get((kind, mode), [])]

    def latency(q: str, mode: str) -> str:
        cost = paired(results, "lat10k", q, lambda on, off: on - off, mode)
        return f"{spread(values('lat10k', q, mode), '{:.0f}')}, {spread(cost, '{:+.0f}')} us"

    def rate(kind: str, mode: str) -> str:
        cost = paired(results, kind, "rate", lambda on, off: on / off, mode)
        return f"{spread(values(kind, 'rate', mode, 1e-3), '{:.0f}')} k msg/s, {spread(cost, '{:.2f}')}x"

    def frozen(mode: str) -> str:
        return spread(frozen_ratios(results, mode), "{:.2f}") + "x"

    print(
        "\nBefore (p, the relay on the path) and after (c, the capture off it), each against (b) of the same rounds\n"
    )
    print("| Measure | (b) HAProxy | (p) relay + HAProxy, cost | (c) capture + HAProxy, cost |")
    print("|---|---|---|---|")
    for q in ("p50", "p99"):
        base = spread(values("lat10k", q, "off"), "{:.0f}")
        print(f"| Round trip at 10k msg/s, {q}, us | {base} | {latency(q, 'relay')} | {latency(q, 'on')} |")
    for kind, label in (("bulk", f"Bulk, {BULK} per write"), ("full", "One per write")):
        base = spread(values(kind, "rate", "off", 1e-3), "{:.0f}")
        print(f"| {label}, k msg/s | {base} | {rate(kind, 'relay')} | {rate(kind, 'on')} |")
    print(f"| One per write, master frozen against master reading | | {frozen('relay')} | {frozen('on')} |")


def report(args: argparse.Namespace, results: dict[tuple[str, str], list[dict]], cpus: int) -> int:
    """Print everything that was measured; 1 when a target is too noisy or lacks data."""

    def col(kind: str, mode: str, key: str, fmt: str = "{:.0f}", scale: float = 1) -> str:
        return spread([r[key] * scale for r in results.get((kind, mode), [])], fmt)

    rounds = {k: len(v) for k, v in results.items()}
    where = "HAProxy (proxy mode)" if args.path == "proxy" else "DNAT + conntrack (NAT mode)"
    print(f"\nKernel capture benchmark, {where}: {args.runs} rounds, {cpus} CPUs, veth")
    print("128-byte PACKET_INs; median (min to max) of the rounds; on vs off paired per round;")
    print("(a) direct: the controller's own address; (b) off: the VIP, no mirror; (c) on: the VIP, capture feeding")
    print("the master; the daemon, the peers and the emulator share the machine's CPUs with the data path;")
    if args.relay:
        print("(p) relay: the switch reaches the mirror's relay on the VIP, which hands the session to HAProxy on")
        print("loopback (PROXY v2) and copies it to the master: the path proxy mode takes with TLS, here in plain TCP;")
    if args.nice:
        print(f"nice {args.nice}: the same daemon at nice {args.nice} under SCHED_BATCH (mirror_capture_nice)")
    if args.controls:
        print("ring: no daemon, its packet ring held and never read (the kernel side's cost);")
        shares = spread([100 * r["share"] for r in results.get(("lat50k", "on"), [])], "{:.0f}")
        print(f"cpu: no capture, a process burning the CPU share of daemon + master (at 50k: {shares} %)")
    print(f"trials that completed: {', '.join(f'{k[0]} {k[1]} {v}' for k, v in sorted(rounds.items()))}\n")
    extra = extra_modes(args)
    names = {
        "relay": "(p) Relay + HAProxy",
        "nice": f"At nice {args.nice}",
        "ring": "Ring, unread",
        "cpu": "CPU share, no capture",
    }
    head = "".join(f" | {names[mode]} | vs off" for mode in extra)
    print(f"| Trial | (a) Direct | (b) Capture off | (c) Capture on | On vs off{head} |")
    print("|---|---|---|---|---|" + "---|---|" * len(extra))
    for kind, rate in (("lat10k", 10), ("lat50k", 50)):
        if kind not in args.trials:
            continue
        for q in ("p50", "p99"):
            cells = [
                f"{col(kind, m, q)} | {spread(paired(results, kind, q, lambda on, off: on - off, m), '{:+.0f}')} us"
                for m in ("on", *extra)
            ]
            more = "".join(f" | {c}" for c in cells[1:])
            print(
                f"| Round trip {q} at {rate}k msg/s offered, us | {col(kind, 'direct', q)} | {col(kind, 'off', q)} "
                f"| {cells[0]}{more} |"
            )
        rates = [col(kind, m, "rate", "{:.1f}", 1e-3) for m in ("direct", "off", "on", *extra)]
        more = "".join(f" | {r} | " for r in rates[3:])
        print(f"| Rate achieved at {rate}k offered, k msg/s | {rates[0]} | {rates[1]} | {rates[2]} | {more}|")
    for kind, label in (("full", "Full load, 1 per write"), ("bulk", f"Full load, {BULK} per write")):
        if kind not in args.trials:
            continue
        cells = [
            f"{col(kind, m, 'rate', '{:.1f}', 1e-3)} | "
            f"{spread(paired(results, kind, 'rate', lambda on, off: on / off, m), '{:.2f}')}x"
            for m in ("on", *extra)
        ]
        more = "".join(f" | {c}" for c in cells[1:])
        print(
            f"| {label} ({messages(args, kind)} msgs), k msg/s | {col(kind, 'direct', 'rate', '{:.1f}', 1e-3)} "
            f"| {col(kind, 'off', 'rate', '{:.1f}', 1e-3)} | {cells[0]}{more} |"
        )
    if "frozen" in args.trials:
        print(
            f"| Full load, 1 per write, master frozen (SIGSTOP), k msg/s | | | "
            f"{col('frozen', 'on', 'rate', '{:.1f}', 1e-3)} | |"
            + "".join(f" {col('frozen', mode, 'rate', '{:.1f}', 1e-3)} | |" for mode in extra)
        )
    print("\nWith the capture on, PACKET_INs summed over the rounds (CPU: median, min to max)\n")
    print(
        "| Trial | Sent | Seen whole | Mirrored | Master got | Dropped | Unseen bytes (/128) | Kernel drops "
        "| Lost copies | Not counted | Identities | Daemon CPU s per 100k | Master CPU s per 100k |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for kind, mode in [(kind, mode) for kind in args.trials for mode in daemon_modes(args)]:
        if kind == "frozen" and mode not in FROZEN_MODES:
            continue  # not run
        rows = results.get((kind, mode), [])
        label = {"on": kind, "relay": f"{kind} through the relay"}.get(mode, f"{kind} at nice {args.nice}")
        if not rows:
            print(f"| {label} | no completed trial | | | | | | | | | | | |")
            continue

        def total(key: str, rows=rows) -> int:
            return sum(r[key] for r in rows)

        identities = all(r["identity"] for r in rows) and all(r["unaccounted"] == 0 for r in rows)
        print(
            f"| {label} | {total('sent')} | {total('seen')} | {total('mirrored')} | {total('master')} "
            f"| {total('dropped')} | {total('unseen')} ({total('unseen') / MESSAGE:.0f}) | {total('kernel_drops')} "
            f"| {total('lost')} | {total('uncounted')} | {identities} (unaccounted bytes {total('unaccounted')}) "
            f"| {spread([r['cpu'] for r in rows], '{:.2f}')} | {spread([r['master_cpu'] for r in rows], '{:.2f}')} |"
        )
    print(
        "\nSeen whole = relayed - the 4 handshake messages = mirrored + dropped; Lost copies = sent - master got;"
        "\nNot counted = lost - dropped - unseen/128 (copies lost that no counter shows; 0 expected);"
        "\nIdentities: relayed = mirrored + filtered + dropped, and switch stream bytes = relayed bytes + unseen bytes."
    )
    missing = {k: sum(r.get("missing", 0) for r in v) for k, v in results.items() if k[0].startswith("lat")}
    if any(missing.values()):
        print(f"Replies missing in latency trials: {missing}")
    errors = [f"{k[1]}: {r['error']}" for k, v in results.items() if k[0] == "errors" for r in v]
    if errors:
        print("Failed trials: " + "; ".join(errors))
    if args.relay:
        before_after(args, results)
    print(
        f"\nTargets, judged on the rounds' paired values"
        f" (met or missed: at least {float(AGREE):.0%} of the rounds agree)\n"
    )
    print("| Target | Per round | Verdict |")
    print("|---|---|---|")
    status = 0
    for name, values, fmt, judged in targets(args, results):
        print(f"| {name} | {', '.join(fmt.format(v) for v in values) or '-'} | {judged} |")
        if judged in ("too noisy", "no data"):
            status = 1
    return status


def inside(args: argparse.Namespace) -> int:
    me = [sys.executable, __file__]
    build_topology(args.path)
    procs = {
        role: subprocess.Popen(["ip", "netns", "exec", "ctl", *me, "--serve", role])
        for role in ("controller", "master")
    }
    results: dict[tuple[str, str], list[dict]] = {}
    started, load = time.monotonic(), os.getloadavg()[0]
    try:
        if args.path == "proxy":
            cfg = Path("/tmp/haproxy.cfg")
            cfg.write_text(HAPROXY_CFG)
            procs["haproxy"] = subprocess.Popen(["ip", "netns", "exec", "lb", "haproxy", "-db", "-f", str(cfg)])
            wait_for_port("lb", VIP, OF_PORT, procs["haproxy"])
        wait_for_port("ctl", CTL, OF_PORT, procs["controller"])
        wait_for_port("ctl", CTL, MASTER_STATS, procs["master"])
        measure(args, results, procs["master"].pid)
    except Exception:
        traceback.print_exc()
    finally:
        for proc in procs.values():
            stop(proc)
        # Whatever happened: the trials that completed are reported.
        data = {
            "results": {"|".join(key): rows for key, rows in results.items()},
            "seconds": time.monotonic() - started,
            "load": [load, os.getloadavg()[0]],
            "cpus": os.cpu_count(),
        }
        Path(OUTPUT, "capture.json").write_text(json.dumps(data))
    return 0


def report_saved(record: dict) -> int:
    """The report of a saved run; 1 when a target is too noisy or lacks data."""
    args = argparse.Namespace(**record["arguments"])
    data = record["data"]
    status = report(args, {tuple(key.split("|")): rows for key, rows in data["results"].items()}, data["cpus"])
    print(
        f"\nmeasured in {data['seconds']:.0f} s; machine load average (1 min)"
        f" {data['load'][0]:.1f} at the start, {data['load'][1]:.1f} at the end"
    )
    return status


def outside(args: argparse.Namespace) -> int:
    """Run this script inside a throwaway container of the lab image (network
    namespaces, nftables and the packet socket need these capabilities)."""
    arguments = ["--path", args.path, "--runs", str(args.runs), "--messages-10k", str(args.messages_10k)]
    arguments += ["--messages-50k", str(args.messages_50k), "--full-messages", str(args.full_messages)]
    arguments += ["--bulk-messages", str(args.bulk_messages)]
    arguments += ["--trials", ",".join(args.trials), "--nice", str(args.nice)]
    arguments += ["--controls"] if args.controls else []
    arguments += ["--relay"] if args.relay else []
    per_round = (400 if args.controls else 220) + 60 * len({"bulk", "frozen"} & set(args.trials))
    name = f"capture_{args.path}"
    with tempfile.TemporaryDirectory() as output:
        code = run_inside(
            "capture.py",
            arguments,
            caps="NET_ADMIN,NET_RAW,SYS_ADMIN",
            timeout=120 + per_round * args.runs,
            output=(output, OUTPUT),
        )
        found = Path(output, "capture.json")
        if not found.exists():
            return code or 1
        data = json.loads(found.read_text())
    return report_saved(saved.load(name, saved.save(name, data, vars(args)))) or code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--path", choices=["proxy", "nat"], default="proxy", help="HAProxy (proxy mode) or DNAT (NAT mode) at the VIP"
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--messages-10k", type=int, default=20_000, help="per round-trip trial at 10k msg/s")
    parser.add_argument("--messages-50k", type=int, default=100_000, help="per round-trip trial at 50k msg/s")
    parser.add_argument("--full-messages", type=int, default=200_000, help="per full-load trial, one per write")
    parser.add_argument("--bulk-messages", type=int, default=1_000_000, help=f"per full-load trial, {BULK} per write")
    parser.add_argument(
        "--trials", type=lambda text: text.split(","), default=list(TRIALS), help=f"some of {','.join(TRIALS)}"
    )
    parser.add_argument(
        "--nice", type=int, default=0, help="also run each trial with the daemon at this nice value, SCHED_BATCH"
    )
    parser.add_argument(
        "--controls", action="store_true", help="also run the ring-only and the same-CPU-share controls per trial"
    )
    parser.add_argument(
        "--relay", action="store_true", help="also run the mirror's relay in front of HAProxy (--path proxy)"
    )
    parser.add_argument("--report", action="store_true", help="print the report of the saved results of --path again")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve", choices=["controller", "master", "ring", "spin"], help=argparse.SUPPRESS)
    parser.add_argument("--share", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.relay and args.path != "proxy":
        parser.error("--relay goes with --path proxy")
    args.shares = {}  # trial kind -> CPU share of daemon + master in its last capture-on trial
    if args.serve == "ring":
        serve_ring()
    elif args.serve == "spin":
        serve_spin(args.share)
    elif args.serve == "controller":
        serve_controller()
    elif args.serve == "master":
        serve_master()
    elif args.report:
        return report_saved(saved.load(f"capture_{args.path}"))
    elif args.inside:
        return inside(args)
    else:
        return outside(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
