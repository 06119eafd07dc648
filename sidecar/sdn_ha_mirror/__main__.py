"""The mirror daemon: python3 -m sdn_ha_mirror --listen VIP:6653 [--capture IFACE] ...

Capture mode (--capture, both modes of the project): binds nothing on the
switches' path; takes the kernel's copies of the sessions to the --listen
addresses from the interface, and mirrors them to the master while this LB
holds the VIP. The switches' sessions go to HAProxy (proxy mode) or, by
the kernel's NAT, to a backup (NAT mode) without passing through it.

Relay mode (proxy mode with TLS): listens on the front VIP (with
IP_FREEBIND, so it also starts on the standby LB), relays every switch
session to HAProxy on loopback and mirrors it to the master. With
--tls-cert, --tls-key and --tls-ca, the switches connect over TLS: the
relay ends it, with a certificate the CA signed required of every switch,
so it still reads each stream, checks its identity and mirrors it; HAProxy
and the master get plain OpenFlow, on the LB's loopback and the control
segment. (The kernel's copies of a TLS stream are ciphertext.)

Either way it serves its counters as Prometheus text on localhost.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import signal
import socket
import ssl
from collections import OrderedDict
from dataclasses import fields

from . import logs
from .accounting import Counters
from .capture import Capture, CaptureStats, PacketRing
from .identity import Bindings
from .master import Pace, Settings
from .relay import SwitchSession, start_server
from .shadow import SwitchView
from .sync import MIN_KEY, PeerSync, load_views, save_views
from .tap import Tap

IP_FREEBIND = 15  # Linux; Python 3.11's socket module lacks the constant
# The metrics endpoint: seconds a scrape may take, the longest request line
# read, and scrapes at once.
METRICS_TIMEOUT = 5.0
METRICS_LINE = 1 << 12
METRICS_CONNECTIONS = 8
# Seconds the daemon gives its closed sessions' last writes when it stops.
SHUTDOWN_GRACE = 0.2

log = logging.getLogger("sdn_ha_mirror")


def address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def rate(text: str) -> float:
    value = float(text)
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"{text}: a rate is a finite number, at least 0")
    return value


class LoopErrors:
    """The event loop's error handler: what peers can make happen again and
    again (an accept that fails for want of file descriptors, say) is
    logged LINES_PER_SECOND times a second at most, the rest counted in one
    line when the second is over."""

    LINES_PER_SECOND = 5

    def __init__(self) -> None:
        self.since, self.lines, self.quiet = 0.0, 0, 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        now = loop.time()
        if now - self.since >= 1.0:
            self.flush()
            self.since, self.lines = now, 0
        if self.lines >= self.LINES_PER_SECOND:
            if not self.quiet and hasattr(loop, "call_later"):
                loop.call_later(self.since + 1.0 - now, self.flush)
            self.quiet += 1
            return
        self.lines += 1
        error = context.get("exception")
        log.error("%s", context.get("message", "event loop error"), exc_info=error if error else None)

    def flush(self) -> None:
        if self.quiet:
            log.error("%d more event loop errors in that second, not logged each", self.quiet)
            self.quiet = 0


class Registry:
    """Totals over every session, live and ended, for the metrics page."""

    def __init__(self) -> None:
        self.ended = Counters()
        self.live: set = set()  # relayed sessions or captured flows
        self.sessions_total = 0
        self.capture: Capture | None = None
        self.sync: PeerSync | None = None
        self.bindings: Bindings | None = None
        self.pace: Pace | None = None

    def opened(self, session) -> None:
        self.live.add(session)
        self.sessions_total += 1
        log.info("switch %s connected (session %d)", session.peer, session.id)

    def closed(self, session) -> None:
        self.live.discard(session)
        c = session.queue.counters
        self.ended.add(c)
        log.info(
            "switch %s closed (session %d): relayed %d, mirrored %d, filtered %d, dropped %d, swallowed %d",
            session.peer,
            session.id,
            c.relayed_messages,
            c.mirrored_messages,
            c.filtered_messages,
            c.dropped_messages,
            c.swallowed_messages,
        )

    def close_all(self) -> None:
        """Shutdown: every session ends as if its switch had left, its
        queued copies handed to the master and its counters logged."""
        if self.capture is not None:
            for flow in list(self.capture.flows.values()):
                self.capture.end(flow, "ended: the mirror stopped")
        for session in list(self.live):
            if isinstance(session, SwitchSession):
                session.close()

    def totals(self) -> Counters:
        total = Counters()
        total.add(self.ended)
        for session in self.live:
            total.add(session.queue.counters)
        return total

    def render(self) -> str:
        def metric(kind: str, name: str, value: int) -> list[str]:
            return [f"# TYPE sdn_ha_mirror_{name} {kind}", f"sdn_ha_mirror_{name} {value}"]

        lines = []
        totals = self.totals()
        for f in fields(Counters):
            lines += metric("counter", f"{f.name}_total", getattr(totals, f.name))
        lines += metric("gauge", "sessions", len(self.live))
        lines += metric("gauge", "master_connected", sum(s.master_ready.is_set() for s in self.live))
        lines += metric("counter", "sessions_opened_total", self.sessions_total)
        if self.pace is not None:
            lines += metric("gauge", "master_links_paced", self.pace.waiting)
        if self.capture is None:
            lines += metric("counter", "sessions_refused_total", SwitchSession.refused)
            lines.append("# TYPE sdn_ha_mirror_sessions_timed_out_total counter")
            for phase in ("handshake", "idle"):
                count = SwitchSession.timed_out[phase]
                lines.append(f'sdn_ha_mirror_sessions_timed_out_total{{phase="{phase}"}} {count}')
        if self.capture is not None:
            for f in fields(CaptureStats):
                lines += metric("counter", f"capture_{f.name}_total", getattr(self.capture.stats, f.name))
            lines += metric("gauge", "capture_active", int(self.capture.active))
        if self.bindings is not None:
            lines += metric("counter", "identity_refused_total", self.bindings.refused)
            lines += metric("gauge", "identity_addresses", len(self.bindings.table))
        if self.sync is not None:
            lines += metric("counter", "sync_received_total", self.sync.received)
            lines += metric("counter", "sync_pushed_total", self.sync.pushed)
            lines += metric("counter", "sync_refused_total", self.sync.refused)
            lines += metric("gauge", "sync_views_known", len(self.sync.known))
        # Per switch address, over its live sessions: one series per switch,
        # however often it reconnects (a label per session would churn).
        per_switch: dict[str, Counters] = {}
        for session in self.live:
            address = session.peer[0] if session.peer else "unknown"
            per_switch.setdefault(address, Counters()).add(session.queue.counters)
        for f in fields(Counters):
            name = f"sdn_ha_mirror_switch_{f.name}"
            lines.append(f"# TYPE {name} gauge")
            for address in sorted(per_switch):
                lines.append(f'{name}{{switch="{address}"}} {getattr(per_switch[address], f.name)}')
        return "\n".join(lines) + "\n"


def listening_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The switches' side of TLS: this LB's certificate, and a certificate
    the CA signed required of every switch (TLS 1.2 at least)."""
    given = [args.tls_cert, args.tls_key, args.tls_ca]
    if not any(given):
        return None
    if not all(given):
        raise SystemExit("TLS needs --tls-cert, --tls-key and --tls-ca together")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_cert_chain(args.tls_cert, args.tls_key)
        context.load_verify_locations(cafile=args.tls_ca)
    except (OSError, ssl.SSLError) as exc:
        raise SystemExit(f"TLS: {exc}") from exc
    return context


def sync_key(args: argparse.Namespace) -> bytes:
    """The key the two LBs sign their view sync with, from a file (never
    the command line, which any local user can read)."""
    if not args.sync_key_file:
        raise SystemExit("--sync-peer needs --sync-key-file: the view sync is signed")
    try:
        with open(args.sync_key_file, "rb") as handle:
            key = handle.read().strip()
    except OSError as exc:
        raise SystemExit(f"--sync-key-file: {exc}") from exc
    if len(key) < MIN_KEY:
        raise SystemExit(f"--sync-key-file {args.sync_key_file}: {len(key)} bytes; the key needs at least {MIN_KEY}")
    return key


async def start_capture(args: argparse.Namespace, settings: Settings, registry: Registry) -> tuple[list, list]:
    """Capture mode: the kernel's copies of the sessions to --listen, the
    views of their switches (from the peer LB, and from the view file a
    previous run of this mirror left), and the tasks that keep them."""
    vips = {host for host, _ in args.listen}
    if len(vips) != 1:
        raise SystemExit("--capture takes the sessions of one VIP: give --listen the same address each time")
    vip, ports = vips.pop(), [port for _, port in args.listen]
    known = load_views(args.view_file) if args.view_file else OrderedDict()
    sync = PeerSync(args.sync_listen, args.sync_peer, sync_key(args), known) if args.sync_peer else None
    registry.sync = sync
    loop = asyncio.get_running_loop()

    def new_tap(peer: tuple[str, int], mid_flight: bool) -> Tap:
        label = f"{peer[0]}:{peer[1]}"
        view = known.pop(label, None)
        if mid_flight and view is None:
            log.info("switch %s: picked up mid-flight, its view not known yet", label)
        return Tap(settings, label, view if mid_flight else None, address=peer[0])

    def closed(flow) -> None:
        registry.closed(flow)
        if sync:
            sync.session_ended(flow.tap.label)

    capture = Capture(
        PacketRing(args.capture, vip, ports, args.capture_buffer),
        vip,
        ports,
        new_tap,
        registry.opened,
        closed,
        idle_timeout=args.idle_timeout,
    )
    registry.capture = capture

    def views() -> list[tuple[str, SwitchView]]:
        return [(flow.tap.label, flow.tap.view) for flow in capture.flows.values()]

    async def keep_views() -> None:
        """Streams picked up before their view was known adopt it when it
        comes (from the peer); the live views go to the view file."""
        saved = None
        while True:
            await asyncio.sleep(0.5)
            for flow in list(capture.flows.values()):
                if not flow.tap.view.ready and (view := known.pop(flow.tap.label, None)):
                    flow.tap.adopt(view)
            if args.view_file:
                current = [(label, view.generation) for label, view in views()]
                if current != saved:
                    try:
                        save_views(args.view_file, views())
                        saved = current
                    except OSError as exc:
                        log.warning("%s: %s", args.view_file, exc)

    servers = []
    tasks = [loop.create_task(capture.run()), loop.create_task(keep_views())]
    if sync:
        servers.append(await sync.serve())
        tasks.append(loop.create_task(sync.push(views)))
    log.info("capturing %s on %s, master %s, %d views known", args.listen, args.capture, args.master, len(known))
    return servers, tasks


def bindings(args: argparse.Namespace) -> Bindings | None:
    if not args.bindings:
        return None
    try:
        return Bindings(args.bindings)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"--bindings: {exc}") from exc


async def serve(args: argparse.Namespace) -> None:
    settings = Settings(
        primary=args.primary,
        master=args.master,
        queue_limit=args.queue_limit,
        hold_timeout=args.hold_timeout,
        switch_timeout=args.switch_timeout,
        handshake_timeout=args.handshake_timeout,
        idle_timeout=args.idle_timeout,
        bindings=bindings(args),
        max_sessions=args.max_sessions,
        master_connect_rate=args.master_connect_rate,
    )
    registry = Registry()
    registry.bindings = settings.bindings
    registry.pace = settings.pace

    scrapes = 0  # metrics connections open

    async def on_metrics(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One scrape: a request line within METRICS_TIMEOUT, the page, close.
        Anything else (too slow, too long, too many at once) is just closed."""
        nonlocal scrapes
        scrapes += 1
        try:
            if scrapes > METRICS_CONNECTIONS:
                return
            async with asyncio.timeout(METRICS_TIMEOUT):
                await reader.readline()
                body = registry.render().encode()
                writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n")
                writer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
                await writer.drain()
        except (ConnectionError, TimeoutError, ValueError):  # ValueError: a line past the reader's limit
            pass
        finally:
            scrapes -= 1
            writer.close()

    servers, tasks = [], []
    tls = None
    if args.capture:
        if args.tls_cert or args.tls_key or args.tls_ca:
            raise SystemExit("--tls-* are for the relay: the capture cannot read a stream in TLS")
        servers, tasks = await start_capture(args, settings, registry)
    else:
        tls = tls_context(args)
        servers = [
            await start_server(settings, registry.opened, registry.closed, sock=listening_socket(*listen), tls=tls)
            for listen in args.listen
        ]
        log.info(
            "listening on %s%s, primary %s, master %s",
            args.listen,
            " (TLS)" if tls else "",
            args.primary,
            args.master,
        )
    servers.append(await asyncio.start_server(on_metrics, *args.metrics, limit=METRICS_LINE))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(LoopErrors())
    failed: list[BaseException] = []

    def supervise(task: asyncio.Task) -> None:
        """A background task that ends on an error ends the daemon (systemd
        restarts it), rather than leaving it up and deaf."""
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", task.get_name(), exc_info=task.exception())
            failed.append(task.exception())
            stop.set()

    for task in tasks:
        task.add_done_callback(supervise)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def reload() -> None:
        """systemctl reload: the bindings and the TLS files, read again; the
        sessions that are up keep going."""
        if settings.bindings:
            settings.bindings.reload()
        if tls is not None:
            try:
                tls.load_cert_chain(args.tls_cert, args.tls_key)
                tls.load_verify_locations(cafile=args.tls_ca)
                log.info("TLS: certificate and CA read again")
            except (OSError, ssl.SSLError) as exc:
                log.error("TLS: %s; keeping the certificate in force", exc)

    loop.add_signal_handler(signal.SIGHUP, reload)
    await stop.wait()
    log.info("stopping: closing %d sessions", len(registry.live))
    for server in servers:
        server.close()
    registry.close_all()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    # The closed sessions' last writes (copies to the master, FINs) go out.
    await asyncio.sleep(SHUTDOWN_GRACE)
    if failed:
        raise SystemExit(1)


def main(argv: list[str] | None = None) -> None:
    # A reload (SIGHUP) that comes while the daemon starts must not end it;
    # serve() installs the real handler once it listens.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    parser = argparse.ArgumentParser(prog="sdn_ha_mirror", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=address, action="append", required=True, help="VIP:PORT, repeatable")
    parser.add_argument("--primary", type=address, default=("127.0.0.1", 16653), help="HAProxy's PROXY listener")
    parser.add_argument("--master", type=address, help="the master controller, HOST:PORT")
    parser.add_argument("--queue-limit", type=int, default=1 << 20, help="bytes of copies held per session")
    parser.add_argument("--hold-timeout", type=float, default=5.0, help="seconds a master request waits for the cache")
    parser.add_argument("--switch-timeout", type=float, default=15.0, help="seconds before a silent switch is gone")
    parser.add_argument(
        "--master-connect-rate",
        type=rate,
        default=100.0,
        help="connects to the master a second, across every switch session (0: unpaced)",
    )
    parser.add_argument("--max-sessions", type=int, default=4096, help="relayed switch sessions at once, at most")
    parser.add_argument("--capture", metavar="IFACE", help="take kernel copies from IFACE instead of relaying")
    parser.add_argument("--capture-buffer", type=int, default=32 << 20, help="bytes of the copies ring")
    parser.add_argument("--idle-timeout", type=float, default=60.0, help="seconds before a silent switch session ends")
    parser.add_argument(
        "--handshake-timeout", type=float, default=30.0, help="seconds a relayed switch has for its OpenFlow handshake"
    )
    parser.add_argument("--view-file", help="where the live sessions' views are kept across restarts")
    parser.add_argument("--sync-listen", type=address, help="where the peer LB sends its views, HOST:PORT")
    parser.add_argument("--sync-peer", type=address, help="the peer LB's --sync-listen, HOST:PORT")
    parser.add_argument("--sync-key-file", metavar="PATH", help="the key both LBs sign the view sync with")
    parser.add_argument(
        "--bindings",
        metavar="PATH",
        help="JSON: each switch address -> the datapath ids it may claim"
        " (the relay refuses any other claim; the capture does not mirror it)",
    )
    parser.add_argument("--tls-cert", metavar="PATH", help="this LB's certificate (PEM) for the switches' TLS")
    parser.add_argument("--tls-key", metavar="PATH", help="its private key (PEM)")
    parser.add_argument("--tls-ca", metavar="PATH", help="the CA (PEM) every switch's certificate must be signed by")
    parser.add_argument("--metrics", type=address, default=("127.0.0.1", 9310))
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logs.setup(args.log_level)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
