"""Links to the master open at a pace: after an LB failover the master
catches up behind the backups, not beside them."""

import asyncio

from sdn_ha_mirror.accounting import MirrorQueue
from sdn_ha_mirror.master import MasterLink, Pace, Settings
from test_hostile import ready_view


def test_a_burst_of_a_tenth_of_the_rate_then_one_slot_each():
    pace = Pace(100)
    delays = [pace.delay(50.0) for _ in range(30)]
    assert delays[:10] == [0.0] * 10  # the burst: rate / 10
    assert [round(d, 3) for d in delays[10:13]] == [0.01, 0.02, 0.03]
    assert round(delays[-1], 3) == 0.2  # 30 connects at once: the last 0.2 s later
    assert pace.delay(60.0) == 0.0  # idle for long: the burst again


def test_unpaced_by_default_and_at_zero():
    assert Settings().pace.delay(1.0) == 0.0
    pace = Pace(0)
    assert [pace.delay(1.0) for _ in range(1000)] == [0.0] * 1000


def test_a_settings_pace_is_shared_by_its_links():
    settings = Settings(master_connect_rate=10)
    assert settings.pace is settings.pace and settings.pace.rate == 10
    assert Settings(master_connect_rate=10).pace is not settings.pace


def test_many_links_connect_to_the_master_at_the_pace():
    links, rate = 40, 100.0

    async def run():
        opened = []

        async def master(reader, writer):
            opened.append(asyncio.get_running_loop().time())
            await reader.read()

        server = await asyncio.start_server(master, "127.0.0.1", 0)
        settings = Settings(master=server.sockets[0].getsockname()[:2], master_connect_rate=rate)
        tasks = []
        start = asyncio.get_running_loop().time()
        for index in range(links):
            link = MasterLink(settings, ready_view(), MirrorQueue(1 << 20), f"switch {index}")
            link.view_changed()
            tasks.append(asyncio.get_running_loop().create_task(link.run()))
        await asyncio.sleep(0.05)
        waiting = settings.pace.waiting
        for _ in range(100):
            if len(opened) == links:
                break
            await asyncio.sleep(0.02)
        for task in tasks:
            task.cancel()
        server.close()
        return sorted(t - start for t in opened), waiting

    opened, waiting = asyncio.run(run())
    assert len(opened) == links
    assert waiting > 0  # the links past the burst waited their turn
    # 10 at once, then one every 10 ms: the last about 0.3 s after the first.
    assert 0.27 <= opened[-1] - opened[0] < 0.6, opened


def test_on_a_large_clock_the_burst_still_waits_nothing():
    pace = Pace(100)
    assert [pace.delay(1e6) for _ in range(10)] == [0.0] * 10


def test_a_link_cancelled_while_waiting_gives_its_slot_back():
    async def run():
        pace = Pace(10)  # burst 1, then one every 0.1 s
        await pace.turn()
        waiting = asyncio.get_running_loop().create_task(pace.turn())
        await asyncio.sleep(0.01)
        assert pace.waiting == 1
        waiting.cancel()
        await asyncio.sleep(0)
        start = asyncio.get_running_loop().time()
        await pace.turn()  # takes the cancelled link's slot: about 0.1 s after the first, not 0.2
        return asyncio.get_running_loop().time() - start, pace.waiting

    waited, still = asyncio.run(run())
    assert waited < 0.15 and still == 0


def test_a_rate_must_be_finite_and_not_negative():
    for bad in (-1, float("inf"), float("nan")):
        try:
            Pace(bad)
        except ValueError:
            continue
        raise AssertionError(f"Pace({bad}) was accepted")
