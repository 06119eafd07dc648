"""Fairness between switches: six switches that flood the relay with small
messages must not starve a seventh. The sidecar runs as its own process, as
on an LB, so that its event loop is the only thing the switches share."""

from __future__ import annotations

import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

from peers import sidecar_process

FLOODS = 6
FLOOD_SECONDS = 4.0
PROXY_HEADER = 28  # what the relay puts before the switch's bytes (PROXY v2, IPv4)

# The primary path: the first connection (the probing switch) is echoed,
# every other one read and thrown away.
PRIMARY = f"""
import socket, sys, threading
server = socket.create_server(("127.0.0.1", 0))
print(server.getsockname()[1], flush=True)
def echo(conn):
    header = b""
    while len(header) < {PROXY_HEADER}:
        header += conn.recv({PROXY_HEADER} - len(header))
    while data := conn.recv(65536):
        conn.sendall(data)
def discard(conn):
    while conn.recv(1 << 20):
        pass
first = True
while True:
    conn, _ = server.accept()
    threading.Thread(target=echo if first else discard, args=(conn,), daemon=True).start()
    first = False
"""


def header(kind: int, xid: int = 0) -> bytes:
    return struct.pack("!BBHI", 4, kind, 8, xid)


def recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def test_six_flooding_switches_do_not_starve_another_one():
    primary = subprocess.Popen([sys.executable, "-c", PRIMARY], stdout=subprocess.PIPE, text=True)
    sidecar, listen, _ = sidecar_process(int(primary.stdout.readline()), "--log-level", "warning")
    try:
        probe = socket.create_connection(("127.0.0.1", listen))
        probe.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        probe.settimeout(2.0)
        probe.sendall(header(0))
        recv_exact(probe, 8)  # the session is up

        # ECHO_REQUESTs: each one is a message the relay inspects on its
        # own, the costliest kind per byte.
        flood = header(2) * 8192
        stop = time.monotonic() + FLOOD_SECONDS
        sent = [0] * FLOODS

        def flooder(index: int) -> None:
            with socket.create_connection(("127.0.0.1", listen)) as sock:
                sock.sendall(header(0))
                while time.monotonic() < stop:
                    sock.sendall(flood)
                    sent[index] += len(flood)

        threads = [threading.Thread(target=flooder, args=(i,)) for i in range(FLOODS)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        rtts, xid = [], 0
        while time.monotonic() < stop - 0.2:
            xid += 1
            start = time.monotonic()
            probe.sendall(header(2, xid))
            assert recv_exact(probe, 8) == header(2, xid), "an echo was lost or reordered"
            rtts.append(time.monotonic() - start)
            time.sleep(0.01)
        for thread in threads:
            thread.join()
        probe.close()
    finally:
        sidecar.terminate()
        primary.kill()
        sidecar.wait(timeout=10)
        primary.wait(timeout=10)
    p99 = statistics.quantiles(rtts, n=100)[98]
    print(
        f"echo round trip under {FLOODS} floods: p50 {statistics.median(rtts) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"
    )
    assert min(sent) > 1 << 20, "a flooder hardly got through: the test measured nothing"
    assert len(rtts) >= 50
    assert p99 <= 0.100
