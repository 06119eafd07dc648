"""The OpenFlow health prober against scripted controllers on loopback."""

import asyncio
import json

from sdn_ha_mirror.openflow import OFPT, pack
from sdn_ha_mirror.probe import Target, choose, main, probe


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
    assert "no HELLO within 0.3 s" in results["silent"]
    assert results["close"] == "closed without a HELLO"
    assert "connect call failed" in results["refused"].lower()


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


def test_the_first_healthy_target_is_chosen_master_first():
    master, backup1, backup2 = Target("m", 1), Target("b1", 1), Target("b2", 1)
    assert choose([master, backup1, backup2]) is None
    backup1.healthy = backup2.healthy = True
    assert choose([master, backup1, backup2]) is backup1
    master.healthy = True
    assert choose([master, backup1, backup2]) is master


def test_once_reports_json_and_the_choice(capsys):
    async def start():
        return await serve("hello")

    loop = asyncio.new_event_loop()
    server, port = loop.run_until_complete(start())
    try:
        dead = loop.run_until_complete(serve("http"))
        code = None

        def run():
            nonlocal code
            code = main(["127.0.0.1:1", f"127.0.0.1:{dead[1]}", f"127.0.0.1:{port}", "--once", "--timeout", "0.5"])

        loop.run_until_complete(loop.run_in_executor(None, run))
    finally:
        server.close()
        loop.close()
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["chosen"] == f"127.0.0.1:{port}"
    assert [t["healthy"] for t in report["targets"]] == [False, False, True]


def test_the_hook_gets_the_choice_then_the_dead_targets():
    from sdn_ha_mirror.probe import on_change_command

    master, backup = Target("198.18.3.21", 6653), Target("198.18.3.22", 6653, healthy=True)
    assert on_change_command("/usr/local/lib/sdn_ha/nat-target", backup, [master]) == [
        "/usr/local/lib/sdn_ha/nat-target",
        "198.18.3.22:6653",
        "198.18.3.21:6653",
    ]
    assert on_change_command("hook", None, []) == ["hook", "none"]


def test_a_starting_prober_clears_nothing_and_a_lost_target_is_cleared_once(tmp_path):
    """Against scripted controllers: the first hook call names no dead target;
    when the chosen one stops answering, the next call picks the other and
    names the lost one; then no more calls while nothing changes."""
    import argparse

    from sdn_ha_mirror.probe import watch

    calls = tmp_path / "calls"
    hook = tmp_path / "hook"
    hook.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    hook.chmod(0o755)

    async def scenario():
        first, first_port = await serve_forever()
        second, second_port = await serve_forever()
        targets = [Target("127.0.0.1", first_port), Target("127.0.0.1", second_port)]
        args = argparse.Namespace(timeout=0.3, interval=0.05, rise=2, fall=2, on_change=str(hook))
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
    assert lines == [f"127.0.0.1:{first_port}", f"127.0.0.1:{second_port} 127.0.0.1:{first_port}"]


async def serve_forever():
    async def handle(reader, writer):
        await reader.read(8)
        writer.write(pack(4, OFPT.HELLO, 1))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]
