"""OpenFlow health prober and NAT pool: python3 -m sdn_ha_mirror.probe BACKUP [BACKUP ...]

A controller is healthy when it accepts a TCP connection and answers our
HELLO with a HELLO of its own (HELLO out, HELLO in) within the timeout.

NAT mode steers its DNAT map with the prober's assignment: every switch
(one address a line in --switches) goes to one healthy backup, chosen by
rendezvous hashing of the switch's address and the backup's. A switch
therefore returns to the same backup while the pool is unchanged, and when a
backup dies only its own switches move; when it comes back they hash to it
again (their sessions, pinned by conntrack, stay where they are). The master
is never assigned while a backup is healthy; with --last-resort it takes
every switch when no backup is.

  --once            probe every target once, print JSON, exit 0 if one is healthy
  --on-change CMD   keep probing; each time the assignment changes or a target
                    dies, write it to --assignment (SWITCH HOST:PORT lines),
                    then run CMD with each target that went down since the
                    last call

A target must fail --fall probes in a row to be dropped and pass --rise in a
row to be taken back, so one lost probe does not move every switch. A
refused connection is decisive at once: the host answered, and nothing
listens on the port (the controller stopped).

With --vip, the sessions the hook cleared (its "RESET SWITCH SPORT DPORT"
lines) are ended toward their switches at once (see reset.py).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import ipaddress
import json
import logging
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass

from . import logs
from .openflow import OFPT, Framer, FramingError, pack
from .reset import challenge, parse_resets

log = logging.getLogger("sdn_ha_mirror.probe")

HOOK_TIMEOUT = 30.0  # seconds the on-change command may take
OFP13 = 0x04
REFUSED = "connection refused"
SLOW = "connected, but no HELLO"


async def probe(host: str, port: int, timeout: float = 1.0) -> str | None:
    """None when the target is healthy, else why not. The connection and the
    HELLO get `timeout` each: a controller whose kernel accepts but whose
    Faucet is slow to answer is told apart from a host that is gone."""
    writer = None
    connected = False
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
        connected = True
        async with asyncio.timeout(timeout):
            writer.write(pack(OFP13, OFPT.HELLO, 0))
            framer = Framer()
            while data := await reader.read(4096):
                for message in framer.feed(data):
                    if message.type == OFPT.HELLO:
                        return None
                    return f"first message is type {message.type}, not HELLO"
            return "closed without a HELLO"
    except TimeoutError:
        return f"{SLOW} within {timeout} s" if connected else f"no connection within {timeout} s"
    except ConnectionRefusedError:
        return REFUSED
    except FramingError as exc:
        return f"not OpenFlow: {exc}"
    except OSError as exc:
        return str(exc)
    finally:
        if writer is not None:
            writer.close()


@dataclass
class Target:
    host: str
    port: int
    healthy: bool = False
    streak: int = 0  # probes in a row that disagree with `healthy`
    reason: str | None = "not probed yet"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def record(self, reason: str | None, rise: int, fall: int, slow_fall: int | None = None) -> None:
        """Flip `healthy` only after `rise` good or `fall` bad probes in a
        row; a refusal drops it at once, and a controller that accepts the
        connection but is slow to say HELLO (a busy Faucet) only after
        `slow_fall` such probes in a row."""
        self.reason = reason
        if (reason is None) == self.healthy:
            self.streak = 0
            return
        self.streak += 1
        if reason is None:
            needed = rise
        elif reason == REFUSED:
            needed = 1
        elif reason.startswith(SLOW):
            needed = slow_fall or fall
        else:
            needed = fall
        if self.streak >= needed:
            self.healthy, self.streak = reason is None, 0


def rendezvous(switch: str, targets: list[Target]) -> Target:
    """The target with the highest hash of (switch, target): removing a
    target moves only the switches it had."""
    return max(targets, key=lambda t: hashlib.sha256(f"{switch} {t.address}".encode()).digest()[:8])


def assign(switches: list[str], backups: list[Target], last_resort: Target | None = None) -> dict[str, str]:
    """Switch address -> HOST:PORT of the healthy backup that serves it; the
    last resort only when no backup is healthy; empty when nothing is."""
    pool = [t for t in backups if t.healthy]
    if not pool and last_resort is not None and last_resort.healthy:
        pool = [last_resort]
    return {switch: rendezvous(switch, pool).address for switch in switches} if pool else {}


def write_assignment(path: str, assignment: dict[str, str]) -> None:
    """Atomically, so the hook never reads half a file."""
    partial = f"{path}.partial"
    with open(partial, "w") as handle:
        handle.writelines(f"{switch} {target}\n" for switch, target in sorted(assignment.items()))
    os.replace(partial, path)


def file_stamp(path: str | None) -> tuple | None:
    try:
        stat = os.stat(path) if path else None
    except FileNotFoundError:
        return None
    return (stat.st_mtime_ns, stat.st_size) if stat else None


def read_switches(path: str | None) -> list[str]:
    """The switches' IPv4 addresses, one a line ('#' starts a comment); a
    line that is not one is logged and skipped, so it cannot spoil the map."""
    if not path:
        return []
    switches = []
    try:
        with open(path) as handle:
            for line in handle:
                text = line.split("#")[0].strip()
                if not text:
                    continue
                try:
                    switches.append(str(ipaddress.IPv4Address(text)))
                except ValueError:
                    log.error("%s: %r is not an IPv4 address; skipped", path, text)
    except FileNotFoundError:
        return []
    return switches


async def probe_all(targets: list[Target], timeout: float, rise: int, fall: int, slow_fall: int | None = None) -> None:
    reasons = await asyncio.gather(*(probe(t.host, t.port, timeout) for t in targets))
    for target, reason in zip(targets, reasons, strict=True):
        target.record(reason, rise, fall, slow_fall)


async def watch(args: argparse.Namespace, backups: list[Target], last_resort: Target | None = None) -> None:
    """Probe forever; apply the assignment when it changes or a target dies.
    Only a target seen healthy and then lost counts as dead: a prober that
    starts (or restarts) never clears sessions on its first rounds."""
    targets = backups + ([last_resort] if last_resort else [])
    switches, switches_seen = [], None
    applied: dict[str, str] | None = None  # until a target answers, the map keeps what it had
    rounds = 0
    was_healthy = {t.address: False for t in targets}
    dead: dict[str, Target] = {}
    while True:
        started = time.monotonic()
        stamp = file_stamp(args.switches)
        if stamp != switches_seen and (stamp is not None or not switches):  # changed: read it again
            switches, switches_seen = read_switches(args.switches), stamp  # (a vanished file keeps the last list)
        await probe_all(targets, args.timeout, args.rise, args.fall, args.slow_fall)
        for t in targets:
            if was_healthy[t.address] and not t.healthy:
                dead[t.address] = t
            elif t.healthy:
                dead.pop(t.address, None)
            was_healthy[t.address] = t.healthy
        rounds += 1
        # The master only once the backups had their chance to rise.
        assignment = assign(switches, backups, last_resort if rounds > args.rise else None)
        back_from_master = last_resort and applied and last_resort.address in applied.values()
        if back_from_master and last_resort.address not in assignment.values():
            dead[last_resort.address] = last_resort  # back to the backups: end the master's sessions
        nothing_yet = applied is None and not any(t.healthy for t in targets)
        if not nothing_yet and (assignment != applied or dead):
            states = ", ".join(f"{t.address} {'up' if t.healthy else 'down: ' + str(t.reason)}" for t in targets)
            spread = Counter(assignment.values())
            log.warning("assignment %s (%s)", dict(spread) or "none", states)
            ok = True
            if args.on_change:
                write_assignment(args.assignment, assignment)
                command = [*args.on_change.split(), *dead]
                try:
                    done = await asyncio.to_thread(
                        subprocess.run, command, check=False, capture_output=True, text=True, timeout=HOOK_TIMEOUT
                    )
                except subprocess.TimeoutExpired:
                    # Killed: a hung hook must not stall the prober while pgrep still sees it alive.
                    done = subprocess.CompletedProcess(command, -1, "", f"no answer in {HOOK_TIMEOUT:.0f} s; killed")
                ok = done.returncode == 0
                if not ok:
                    log.error("%s exited with %d; trying again next round: %s", command, done.returncode, done.stderr)
                resets = parse_resets(done.stdout)
                if resets and args.vip:
                    sent = challenge(args.vip, resets)
                    log.warning("ended %d of %d cleared sessions toward their switches", sent, len(resets))
            if ok:
                applied = assignment
                dead.clear()
        await asyncio.sleep(max(0.0, args.interval - (time.monotonic() - started)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sdn_ha_mirror.probe", description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="+", help="HOST:PORT of each backup controller")
    parser.add_argument("--last-resort", help="HOST:PORT that takes every switch when no backup is healthy")
    parser.add_argument("--switches", help="file with the switches' addresses, one a line")
    parser.add_argument("--assignment", default="assignment", help="file the assignment is written to")
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds for connect plus HELLO")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between probe rounds")
    parser.add_argument("--rise", type=int, default=2, help="good probes in a row to take a target back")
    parser.add_argument("--fall", type=int, default=2, help="bad probes in a row to drop a target")
    parser.add_argument("--vip", help="the front VIP: end the cleared sessions toward their switches from it")
    parser.add_argument(
        "--slow-fall", type=int, default=20, help="probes in a row that connect but get no HELLO, to drop a target"
    )
    parser.add_argument("--once", action="store_true", help="probe once, print JSON and exit")
    parser.add_argument("--on-change", help="command run after the assignment is written, with the dead targets")
    args = parser.parse_args(argv)
    logs.setup("info")
    backups = [parse_target(text) for text in args.targets]
    last_resort = parse_target(args.last_resort) if args.last_resort else None
    if args.once:
        targets = backups + ([last_resort] if last_resort else [])
        asyncio.run(probe_all(targets, args.timeout, rise=1, fall=1))
        report = {
            "targets": [{"target": t.address, "healthy": t.healthy, "reason": t.reason} for t in targets],
            "assignment": assign(read_switches(args.switches), backups, last_resort),
        }
        print(json.dumps(report, indent=2))
        return 0 if any(t.healthy for t in targets) else 1
    asyncio.run(watch(args, backups, last_resort))
    return 0


def parse_target(text: str) -> Target:
    host, _, port = text.rpartition(":")
    return Target(host, int(port))


if __name__ == "__main__":
    sys.exit(main())
