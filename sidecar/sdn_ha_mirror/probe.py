"""OpenFlow health prober: python3 -m sdn_ha_mirror.probe TARGET [TARGET ...]

A controller is healthy when it accepts a TCP connection and answers our
HELLO with a HELLO of its own (HELLO out, HELLO in) within the timeout. The
prober picks the first healthy target in the order given, so listing the
master first prefers it. NAT mode steers its DNAT map with the choice:

  --once            probe every target once, print JSON, exit 0 if one is healthy
  --on-change CMD   keep probing; each time the choice or a target's health
                    changes, run CMD with the chosen HOST:PORT (or "none")
                    and then each target that went down since the last call

A target must fail --fall probes in a row to be dropped and pass --rise in a
row to be taken back, so one lost probe does not move every switch.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import subprocess
import sys
import time
from dataclasses import dataclass

from .openflow import OFPT, Framer, FramingError, pack

log = logging.getLogger("sdn_ha_mirror.probe")
OFP13 = 0x04


async def probe(host: str, port: int, timeout: float = 1.0) -> str | None:
    """None when the target is healthy, else why not."""
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(pack(OFP13, OFPT.HELLO, 0))
            framer = Framer()
            while data := await reader.read(4096):
                for message in framer.feed(data):
                    if message.type == OFPT.HELLO:
                        return None
                    return f"first message is type {message.type}, not HELLO"
            return "closed without a HELLO"
    except TimeoutError:
        return f"no HELLO within {timeout} s"
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

    def record(self, reason: str | None, rise: int, fall: int) -> None:
        """Flip `healthy` only after `rise` good or `fall` bad probes in a row."""
        self.reason = reason
        if (reason is None) == self.healthy:
            self.streak = 0
            return
        self.streak += 1
        if self.streak >= (rise if reason is None else fall):
            self.healthy, self.streak = reason is None, 0


def choose(targets: list[Target]) -> Target | None:
    """The first healthy target, in the configured order."""
    return next((t for t in targets if t.healthy), None)


async def probe_all(targets: list[Target], timeout: float, rise: int, fall: int) -> None:
    reasons = await asyncio.gather(*(probe(t.host, t.port, timeout) for t in targets))
    for target, reason in zip(targets, reasons, strict=True):
        target.record(reason, rise, fall)


def on_change_command(command: str, chosen: Target | None, dead: list[Target]) -> list[str]:
    """The hook's command line: the chosen HOST:PORT (or "none"), then the
    targets that went down since the hook last ran."""
    return [*command.split(), chosen.address if chosen else "none", *(t.address for t in dead)]


async def watch(args: argparse.Namespace, targets: list[Target]) -> None:
    """Probe forever; run the hook when the choice changes or a target dies.
    Only a target seen healthy and then lost counts as dead: a prober that
    starts (or restarts) never clears sessions on its first rounds."""
    chosen: str | None = None  # until a target answers, the map keeps what it had
    was_healthy = {t.address: False for t in targets}
    dead: dict[str, Target] = {}
    while True:
        started = time.monotonic()
        await probe_all(targets, args.timeout, args.rise, args.fall)
        for t in targets:
            if was_healthy[t.address] and not t.healthy:
                dead[t.address] = t
            elif t.healthy:
                dead.pop(t.address, None)
            was_healthy[t.address] = t.healthy
        pick = choose(targets)
        address = pick.address if pick else None
        if address != chosen or dead:
            states = ", ".join(f"{t.address} {'up' if t.healthy else 'down: ' + str(t.reason)}" for t in targets)
            log.warning("target %s (%s)", address, states)
            ok = True
            if args.on_change:
                command = on_change_command(args.on_change, pick, list(dead.values()))
                done = await asyncio.to_thread(subprocess.run, command, check=False)
                ok = done.returncode == 0
                if not ok:
                    log.error("%s exited with %d; trying again next round", command, done.returncode)
            if ok:
                chosen = address
                dead.clear()
        await asyncio.sleep(max(0.0, args.interval - (time.monotonic() - started)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sdn_ha_mirror.probe", description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="+", help="HOST:PORT, in order of preference (the master first)")
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds for connect plus HELLO")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between probe rounds")
    parser.add_argument("--rise", type=int, default=2, help="good probes in a row to take a target back")
    parser.add_argument("--fall", type=int, default=2, help="bad probes in a row to drop a target")
    parser.add_argument("--once", action="store_true", help="probe once, print JSON and exit")
    parser.add_argument("--on-change", help="command run with the chosen HOST:PORT when the choice changes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    targets = []
    for text in args.targets:
        host, _, port = text.rpartition(":")
        targets.append(Target(host, int(port)))
    if args.once:
        asyncio.run(probe_all(targets, args.timeout, rise=1, fall=1))
        pick = choose(targets)
        report = {
            "chosen": pick.address if pick else None,
            "targets": [{"target": t.address, "healthy": t.healthy, "reason": t.reason} for t in targets],
        }
        print(json.dumps(report, indent=2))
        return 0 if pick else 1
    asyncio.run(watch(args, targets))
    return 0


if __name__ == "__main__":
    sys.exit(main())
