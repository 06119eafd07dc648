# Copyright: sdn_ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HAProxy's stats socket, read once for the haproxy_stats module and the
benchmarks (which run this file's text on a load balancer's own Python).
Standard library only."""

from __future__ import annotations

import csv
import io
import socket


def query(path: str, command: str, timeout: float = 5.0) -> str:
    """Send one command to HAProxy's stats socket; the whole answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode()


def stat_rows(text: str) -> list[dict]:
    """The rows of `show stat`'s CSV, one dictionary each, keyed by its header."""
    return list(csv.DictReader(io.StringIO(text.lstrip("# "))))


def parse_servers(text: str, backend: str | None) -> list[dict]:
    """The servers of `show stat` (of one backend, when given)."""
    servers = []
    for row in stat_rows(text):
        if row.get("svname") in ("FRONTEND", "BACKEND", None):
            continue
        if backend and row.get("pxname") != backend:
            continue
        servers.append(
            {
                "backend": row["pxname"],
                "server": row["svname"],
                "address": row.get("addr", ""),
                "status": row.get("status", ""),
                "check_status": row.get("check_status", ""),
                "current_sessions": int(row.get("scur") or 0),
                "total_sessions": int(row.get("stot") or 0),
            }
        )
    return servers


def backend_sessions(text: str, backend: str, field: str = "scur") -> int:
    """A backend's own session count from `show stat`: scur (current) or stot (total)."""
    return sum(int(r[field] or 0) for r in stat_rows(text) if r["pxname"] == backend and r["svname"] == "BACKEND")
