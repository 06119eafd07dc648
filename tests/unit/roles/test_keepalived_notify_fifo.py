"""The keepalived role's notify FIFO reader, rendered from its template and
run with sh against a real FIFO: transitions are handled one at a time, in
the order keepalived wrote them, even when handling one is slow."""

import os
import subprocess
import time
from pathlib import Path

import jinja2

TEMPLATE = Path(__file__).resolve().parents[3] / "roles" / "keepalived" / "templates" / "keepalived-notify-fifo.j2"

# Handling a MASTER takes longer than a BACKUP, as when the conntrackd hook
# commits its cache: run in parallel, the BACKUP would be recorded first.
NOTIFY = """#!/bin/sh
[ "$3" = MASTER ] && sleep 0.3
echo "$1 $2 $3 $4" >> {log}
"""


def render(tmp_path: Path) -> tuple[Path, Path]:
    log = tmp_path / "calls"
    notify = tmp_path / "notify"
    notify.write_text(NOTIFY.format(log=log))
    notify.chmod(0o755)
    reader = tmp_path / "reader"
    reader.write_text(
        jinja2.Template(TEMPLATE.read_text()).render(
            ansible_managed="test", __keepalived_notify_script=notify, __keepalived_notify_lock=tmp_path / "lock"
        )
    )
    return reader, log


def run_one(reader: Path, tmp_path: Path) -> subprocess.Popen:
    """Run the reader on a new FIFO, in a session of its own, for one
    GROUP MASTER line, until it exits."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    proc = subprocess.Popen(["sh", str(reader), str(fifo)], start_new_session=True)
    try:
        with open(fifo, "w") as writer:
            writer.write('GROUP "sdn_ha" MASTER 0\n')
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
    return proc


def test_transitions_are_handled_in_order_one_at_a_time(tmp_path):
    reader, log = render(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    proc = subprocess.Popen(["sh", str(reader), str(fifo)])
    try:
        with open(fifo, "w") as writer:
            writer.write('INSTANCE "front" MASTER 100\nGROUP "sdn_ha" MASTER 0\n')
            writer.write("VS [198.18.2.100]:tcp:6653 UP\n")  # not VRRP: skipped
            writer.write('INSTANCE "front" BACKUP 100\nGROUP "sdn_ha" BACKUP 0\n')
            writer.flush()
            time.sleep(0.1)
            # keepalived signals the reader's group when it stops or reloads:
            # what was written is still handled.
            proc.terminate()
            writer.write('GROUP "sdn_ha" STOP 0\n')
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
    assert log.read_text().splitlines() == [
        "INSTANCE front MASTER 100",
        "GROUP sdn_ha MASTER 0",
        "INSTANCE front BACKUP 100",
        "GROUP sdn_ha BACKUP 0",
        "GROUP sdn_ha STOP 0",
    ]


def test_the_notify_script_does_not_inherit_the_ignored_sigterm(tmp_path):
    """The reader ignores SIGTERM; what it runs must not, or a hook's
    `timeout` could not stop a stuck command."""
    reader, log = render(tmp_path)
    (tmp_path / "notify").write_text(f"#!/bin/sh\nsed -n 's/^SigIgn:[[:space:]]*//p' /proc/$$/status >> {log}\n")
    run_one(reader, tmp_path)
    ignored = int(log.read_text().strip(), 16)
    assert not ignored & (1 << (15 - 1)), f"SIGTERM ignored by the notify script (SigIgn {ignored:#x})"


def test_each_notify_runs_in_a_session_of_its_own(tmp_path):
    """Signals for the reader's process group (keepalived's stop and
    reload) must not cut a notify short."""
    reader, log = render(tmp_path)
    (tmp_path / "notify").write_text(f"#!/bin/sh\ncut -d' ' -f5,6 /proc/$$/stat >> {log}\n")
    proc = run_one(reader, tmp_path)
    group, session = (int(n) for n in log.read_text().split())
    assert group != proc.pid and session != proc.pid
