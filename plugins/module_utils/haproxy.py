# Copyright: sdn_ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HAProxy's stats socket, read once for the haproxy_stats module and the
benchmarks (which run this file's text on a load balancer's own Python).
Standard library only."""

from __future__ import annotations

import csv
import io
import re
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


# One stream of `show sess`: its client, its frontend, backend and server.
_SESSION = re.compile(r"\bsrc=(?P<source>\S+)\s+fe=(?P<frontend>\S+)\s+be=(?P<backend>\S+)\s+srv=(?P<server>\S+)")


def parse_sessions(text: str, backend: str | None) -> list[dict]:
    """The client sessions of `show sess` (of one backend, when given): the
    client's address and port, and the server HAProxy sent it to. The
    session of the socket's own reader, and sessions with no server yet, are
    left out."""
    sessions = []
    for match in _SESSION.finditer(text):
        if match["server"] == "<none>" or (backend and match["backend"] != backend):
            continue
        address, _sep, port = match["source"].rpartition(":")
        sessions.append(
            {
                "source": address.strip("[]"),
                "source_port": int(port) if port.isdigit() else 0,
                "frontend": match["frontend"],
                "backend": match["backend"],
                "server": match["server"],
            }
        )
    return sessions


def live_sessions(servers: list[dict], sessions: list[dict]) -> list[dict]:
    """The sessions whose server counts current sessions. HAProxy 3.0 still
    lists, for tens of seconds, a stream it shut down when its server was
    marked DOWN (on-marked-down shutdown-sessions); its server no longer
    counts it."""
    serving = {(s["backend"], s["server"]) for s in servers if s["current_sessions"] > 0}
    return [s for s in sessions if (s["backend"], s["server"]) in serving]
