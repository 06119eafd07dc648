"""The OpenFlow health prober against scripted controllers on loopback."""

import asyncio
import json

from sdn_ha_mirror.openflow import OFPT, pack
from sdn_ha_mirror.probe import REFUSED, SLOW, Target, assign, main, probe


async def serve(behaviour):
    async def handle(reader, writer):
        await reader.read(8)
        if behaviour == "hello":
            writer.write(pack(4, OFPT.HELLO, 1))
        elif behaviour == "http":
            writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        elif behaviour == "silent":
            await asyncio.sleep(5)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_only_a_hello_makes_a_controller_healthy():
    async def scenario():
        results = {}
        for behaviour in ("hello", "http", "silent", "close"):
            server, port = await serve(behaviour)
            results[behaviour] = await probe("127.0.0.1", port, timeout=0.3)
            server.close()
        server, port = await serve("hello")
        server.close()
        await server.wait_closed()
        results["refused"] = await probe("127.0.0.1", port, timeout=0.3)
        return results

    results = asyncio.run(scenario())
    assert results["hello"] is None
    assert "not OpenFlow" in results["http"]
    assert results["silent"] == f"{SLOW} within 0.3 s"
    assert results["close"] == "closed without a HELLO"
    assert results["refused"] == REFUSED


def test_a_busy_controller_is_given_longer_than_a_silent_host():
    target = Target("198.18.3.21", 6653, healthy=True)
    for _ in range(5):
        target.record(f"{SLOW} within 0.5 s", rise=2, fall=2, slow_fall=6)
    assert target.healthy
    target.record(f"{SLOW} within 0.5 s", rise=2, fall=2, slow_fall=6)
    assert not target.healthy
    gone = Target("198.18.3.22", 6653, healthy=True)
    for _ in range(2):
        gone.record("no connection within 0.5 s", rise=2, fall=2, slow_fall=6)
    assert not gone.healthy


def test_a_refused_connection_drops_a_target_at_once():
    target = Target("198.18.3.21", 6653, healthy=True)
    target.record("no HELLO within 0.5 s", rise=2, fall=3)
    assert target.healthy
    target.record(REFUSED, rise=2, fall=3)
    assert not target.healthy


def test_a_target_flips_only_after_rise_or_fall_probes_in_a_row():
    target = Target("198.18.3.21", 6653)
    target.record(None, rise=2, fall=3)
    assert not target.healthy
    target.record(None, rise=2, fall=3)
    assert target.healthy
    for _ in range(2):
        target.record("timeout", rise=2, fall=3)
    target.record(None, rise=2, fall=3)  # a good probe resets the streak
    for _ in range(2):
        target.record("timeout", rise=2, fall=3)
    assert target.healthy
    target.record("timeout", rise=2, fall=3)
    assert not target.healthy


SWITCHES = [f"198.18.1.{n}" for n in range(100, 164)]


def test_switches_spread_over_the_healthy_backups_and_only_a_dead_backups_switches_move():
    master = Target("198.18.3.21", 6653, healthy=True)
    backups = [Target(f"198.18.3.{n}", 6653, healthy=True) for n in (22, 23, 24)]
    before = assign(SWITCHES, backups, master)
    assert set(before.values()) == {b.address for b in backups}  # never the master while a backup is up
    assert assign(SWITCHES, backups, master) == before  # the same switch, the same backup
    backups[0].healthy = False
    after = assign(SWITCHES, backups, master)
    moved = {s for s in SWITCHES if before[s] != after[s]}
    assert moved == {s for s in SWITCHES if before[s] == backups[0].address}
    backups[0].healthy = True
    assert assign(SWITCHES, backups, master) == before  # back: its switches hash to it again


def test_the_master_serves_only_as_the_last_resort_and_only_if_asked():
    master = Target("198.18.3.21", 6653, healthy=True)
    backups = [Target("198.18.3.22", 6653), Target("198.18.3.23", 6653)]
    assert assign(SWITCHES, backups) == {}
    assert set(assign(SWITCHES, backups, master).values()) == {master.address}
    master.healthy = False
    assert assign(SWITCHES, backups, master) == {}


def test_two_backups_each_carry_40_to_60_percent_of_the_labs_64_emulated_switches():
    backups = [Target("198.18.3.22", 6653, healthy=True), Target("198.18.3.23", 6653, healthy=True)]
    shares = sorted(list(assign(SWITCHES, backups).values()).count(b.address) / len(SWITCHES) for b in backups)
    assert 0.4 <= shares[0] <= shares[1] <= 0.6, shares


def test_once_reports_json_and_the_assignment(capsys, tmp_path):
    switches = tmp_path / "switches"
    switches.write_text("198.18.1.10\n# a comment\n198.18.1.100\n")

    async def start():
        return await serve("hello")

    loop = asyncio.new_event_loop()
    server, port = loop.run_until_complete(start())
    try:
        dead = loop.run_until_complete(serve("http"))
        code = None

        def run():
            nonlocal code
            targets = ["127.0.0.1:1", f"127.0.0.1:{dead[1]}", f"127.0.0.1:{port}"]
            code = main([*targets, "--once", "--timeout", "0.5", "--switches", str(switches)])

        loop.run_until_complete(loop.run_in_executor(None, run))
    finally:
        server.close()
        loop.close()
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["assignment"] == {"198.18.1.10": f"127.0.0.1:{port}", "198.18.1.100": f"127.0.0.1:{port}"}
    assert [t["healthy"] for t in report["targets"]] == [False, False, True]


def test_a_starting_prober_clears_nothing_and_a_lost_target_is_cleared_once(tmp_path):
    """Against scripted controllers: the first hook call names no dead target
    and spreads the switches; when one backup stops answering, the next call
    names it and its switches move; then no more calls while nothing changes."""
    import argparse

    from sdn_ha_mirror.probe import watch

    calls, assignment, switches = tmp_path / "calls", tmp_path / "assignment", tmp_path / "switches"
    switches.write_text("\n".join(SWITCHES))
    hook = tmp_path / "hook"
    hook.write_text(f'#!/bin/sh\necho "$@" "|" $(cut -d" " -f2 {assignment} | sort | uniq -c | wc -l) >> {calls}\n')
    hook.chmod(0o755)

    async def scenario():
        first, first_port = await serve_forever()
        second, second_port = await serve_forever()
        targets = [Target("127.0.0.1", first_port), Target("127.0.0.1", second_port)]
        args = argparse.Namespace(
            timeout=0.3,
            interval=0.05,
            rise=2,
            fall=2,
            slow_fall=None,
            on_change=str(hook),
            vip=None,
            switches=str(switches),
            assignment=str(assignment),
        )
        task = asyncio.create_task(watch(args, targets))
        await asyncio.sleep(0.6)
        first.close()
        await first.wait_closed()
        await asyncio.sleep(0.8)
        task.cancel()
        second.close()
        return first_port, second_port

    first_port, second_port = asyncio.run(scenario())
    lines = calls.read_text().splitlines()
    # Both come up in the same round; then the first dies and every switch goes to the second.
    assert lines == ["| 2", f"127.0.0.1:{first_port} | 1"]
    assert set(assignment.read_text().split()[1::2]) == {f"127.0.0.1:{second_port}"}


async def serve_forever():
    async def handle(reader, writer):
        await reader.read(8)
        writer.write(pack(4, OFPT.HELLO, 1))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_the_switch_list_skips_what_is_not_an_ipv4_address(tmp_path):
    from sdn_ha_mirror.probe import read_switches

    switches = tmp_path / "switches"
    switches.write_text("198.18.1.10\n2001:db8::1\n# comment\n\nnot-an-address\n198.18.1.100 # emu-1\n")
    assert read_switches(str(switches)) == ["198.18.1.10", "198.18.1.100"]
    assert read_switches(str(tmp_path / "missing")) == []


def test_the_prober_logs_json_lines_like_the_mirror(tmp_path):
    import json
    import os
    import subprocess
    import sys

    from peers import FILES, free_port

    switches = tmp_path / "switches"
    switches.write_text("198.18.1.10\nnot-an-address\n")
    done = subprocess.run(
        [sys.executable, "-m", "sdn_ha_mirror.probe", f"127.0.0.1:{free_port()}", "--once", "--switches", switches],
        env=dict(os.environ, PYTHONPATH=FILES),
        capture_output=True,
        text=True,
        timeout=30,
    )
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert any(entry["level"] == "error" and "not-an-address" in entry["msg"] for entry in lines), done.stderr
