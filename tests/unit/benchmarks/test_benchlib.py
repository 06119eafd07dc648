"""The benchmarks' shared library: constants read from where the lab and the
roles define them, the OpenFlow conversation built with the sidecar's code,
statistics, and results that round-trip through their files."""

import json
import math
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "benchmarks"))

from benchlib import conversation, lab, results, stats


def defaults(role: str) -> dict:
    return yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())


def test_constants_are_the_roles_defaults():
    assert defaults("keepalived")["keepalived_state_file"] == lab.STATE_FILE
    assert defaults("keepalived")["keepalived_drain_file"] == lab.DRAIN_FILE
    assert defaults("nat")["nat_state_dir"] + "/assignment" == lab.NAT_ASSIGNMENT
    assert defaults("nat")["nat_table"] == lab.NAT_TABLE
    assert lab.MASTER_METRICS.endswith(f":{defaults('controller')['controller_prometheus_port']}/metrics")
    assert defaults("haproxy")["haproxy_stats_socket"] == lab.HAPROXY_SOCKET


def test_the_haproxy_backend_name_is_the_templates():
    template = (ROOT / "roles" / "haproxy" / "templates" / "haproxy.cfg.j2").read_text()
    assert f"backend {lab.HAPROXY_BACKEND}\n" in template


def test_a_templated_default_is_refused():
    with pytest.raises(ValueError, match="mirror_prober_state_dir is templated"):
        lab.role_default("mirror", "mirror_prober_state_dir")


def test_the_lab_is_read_from_its_inventory():
    plan = lab.lab()
    topology = yaml.safe_load((ROOT / "inventories" / "lab" / "group_vars" / "all" / "topology.yml").read_text())
    assert plan.front_vip == topology["sdn_ha_front_vip"]
    assert plan.lbs == ("lb1", "lb2")
    assert plan.switch.name == "sw1"
    assert plan.switch.address == "198.18.1.10"
    assert plan.switch.ports == ["p1", "p2"]
    assert plan.sync_segment == topology["sdn_ha_segments"]["sync"]
    assert plan.master.name == "ctl1"
    assert plan.backups == {"ctl2": "198.18.3.22", "ctl3": "198.18.3.23"}
    assert plan.bench_dpid == 0x99
    assert plan.openflow_port == topology["sdn_ha_openflow_ports"][0]


def test_units_come_from_the_data_path():
    assert lab.unit("nat_prober") == "sdn-ha-prober"
    assert lab.unit("identity_gate") == "sdn-ha-identity"


def test_the_haproxy_probe_carries_the_collections_parser():
    program = lab.haproxy_program("print(BACKEND)")
    assert "def parse_sessions(" in program
    compile(program, "probe", "exec")


def test_the_session_probe_counts_only_its_own_switch(tmp_path):
    """The probe run against a stand-in stats socket: sw1 (.10) is carried;
    from the third answer on, it has a second session (a new port), and the
    other switch (.25) one more too."""
    path = str(tmp_path / "admin.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(8)
    first = (
        "0x1: proto=tcpv4 src=198.18.1.25:41000 fe=openflow be=controllers srv=ctl3 ts=00\n"
        "0x2: proto=tcpv4 src=198.18.1.10:40000 fe=openflow be=controllers srv=ctl2 ts=00\n"
    )
    later = first + (
        "0x3: proto=tcpv4 src=198.18.1.25:41001 fe=openflow be=controllers srv=ctl3 ts=00\n"
        "0x4: proto=tcpv4 src=198.18.1.10:40001 fe=openflow be=controllers srv=ctl2 ts=00\n"
    )
    answered = []

    def serve():
        while True:
            try:
                conn, _peer = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(100)
                conn.sendall((first if len(answered) < 2 else later).encode())
                answered.append(1)

    threading.Thread(target=serve, daemon=True).start()
    program = lab.SESSION_PROBE.replace(repr(lab.HAPROXY_SOCKET), repr(path))

    def probe(*args):
        answered.clear()
        return subprocess.run([sys.executable, "-c", program, *args], capture_output=True, text=True, check=True).stdout

    try:
        assert probe("0", "now", "198.18.1.10").strip()
        assert not probe("0", "now", "198.18.1.99").strip()
        # `new`: sw1's second session, on the third read.
        assert float(probe("5", "new", "198.18.1.10"))
        assert len(answered) == 3
        # A switch with no new session: nothing within the timeout.
        assert not probe("0.2", "new", "198.18.1.99").strip()
    finally:
        server.close()


def of(kind: int, xid: int = 0, body: bytes = b"") -> bytes:
    return struct.pack("!BBHI", 4, kind, 8 + len(body), xid) + body


def test_the_conversation_keeps_its_wire_format():
    port_desc = struct.pack("!HH4x", 13, 0)
    assert of(0, 1) + of(5, 100) + of(18, 101, port_desc) == conversation.BACKUP_HANDSHAKE
    assert len(conversation.SWITCH_HANDSHAKE) == len(of(6, 100, bytes(24)) + of(19, 101, port_desc + bytes(64)))
    assert of(10, 0, bytes(120)) == conversation.PACKET_IN
    assert conversation.PACKET_OUT[:4] == struct.pack("!BBH", 4, 13, 128) == conversation.PACKET_OUT_HEAD
    message = conversation.command(b"T", 12345)
    assert len(message) == conversation.COMMAND_LEN
    assert conversation.read_command(message) == (b"T", 12345)


def test_summary_leaves_out_missing_values():
    s = stats.summary([3.0, None, 1.0, math.nan, 2.0])
    assert (s["n"], s["missed"], s["median"], s["min"], s["max"]) == (3, 2, 2.0, 1.0, 3.0)
    assert stats.summary([None]) == {"n": 0, "missed": 1}
    assert stats.fmt(stats.summary([None])) == "no result"


def test_spread_and_ratio():
    assert stats.spread([1.0, 3.0, 2.0], "{:.1f}", " s") == "2.0 s (1.0-3.0)"
    assert stats.spread([-1.0, 2.0], "{:+.0f}", sep=" to ") == "+0 (-1 to +2)"
    assert stats.spread([], empty="-") == "-"
    assert stats.ratio(3.0, 2.0) == "1.50x"
    assert stats.ratio(None, 2.0) == "-"


def test_results_round_trip(tmp_path):
    path = results.save("example", {"values": [1, 2]}, {"runs": 2}, path=tmp_path / "example.json")
    record = results.load("example", path)
    assert record["data"] == {"values": [1, 2]}
    assert record["arguments"] == {"runs": 2}
    assert record["benchmark"] == "example"
    assert record["revision"]


def test_lists_of_plain_values_are_written_on_one_line():
    text = results.dumps({"a": [1, -2.5, 1e-05, None, True], "b": [[0.1, 2], {"c": 3}]})
    assert '"a": [1, -2.5, 1e-05, null, true]' in text
    assert "[0.1, 2]" in text
    assert json.loads(text) == {"a": [1, -2.5, 1e-05, None, True], "b": [[0.1, 2], {"c": 3}]}
