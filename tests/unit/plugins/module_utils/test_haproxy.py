import socket
import threading

from ansible_collections.sdn_ha.control_plane.plugins.module_utils.haproxy import (
    live_sessions,
    parse_servers,
    parse_sessions,
    query,
)

STATS = """# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,status,addr,check_status
openflow,FRONTEND,,,1,1,400,3,0,0,OPEN,,
controllers,ctl2,0,0,1,1,,3,0,0,UP,198.18.3.22:6653,L7OK
controllers,ctl3,0,0,0,0,,0,0,0,DOWN,198.18.3.23:6653,L4CON
controllers,BACKEND,0,0,1,1,40,3,0,0,UP,,
"""


def test_servers_are_parsed_and_frontends_skipped():
    servers = parse_servers(STATS, "controllers")
    assert [s["server"] for s in servers] == ["ctl2", "ctl3"]
    assert servers[0] == {
        "backend": "controllers",
        "server": "ctl2",
        "address": "198.18.3.22:6653",
        "status": "UP",
        "check_status": "L7OK",
        "current_sessions": 1,
        "total_sessions": 3,
    }
    assert servers[1]["status"] == "DOWN"


def test_other_backends_are_filtered_out():
    assert parse_servers(STATS, "elsewhere") == []


def test_query_reads_the_whole_answer(tmp_path):
    path = str(tmp_path / "admin.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)

    def answer():
        conn, _peer = server.accept()
        assert conn.recv(100) == b"show stat\n"
        conn.sendall(STATS.encode())
        conn.close()

    thread = threading.Thread(target=answer)
    thread.start()
    assert query(path, "show stat") == STATS
    thread.join()
    server.close()


# `show sess` of HAProxy 2.6 (Debian 12; 3.0 on Debian 13 prints the same
# fields): two switches, and the stats socket's own reader.
SESS = (
    "0x55d6f4ec59e0: proto=tcpv4 src=198.18.1.10:50076 fe=openflow be=controllers srv=ctl2 ts=00 epoch=0 age=8m17s"
    " calls=3 rate=0 cpu=0 lat=0 rq[f=848202h,i=0,an=00h,rx=23h59m,wx=,ax=] scf=[8,0h,fd=15] exp=23h51m rc=0 c_exp=\n"
    "0x55d6f4feee30: proto=unix_stream src=unix:1 fe=GLOBAL be=<NONE> srv=<none> ts=00 epoch=0 age=0s calls=1\n"
    "0x7f1dd002d0f0: proto=tcpv4 src=198.18.1.25:53742 fe=openflow be=controllers srv=ctl3 ts=00 epoch=0 age=2m51s\n"
    "0x7f1dd002d0f8: proto=tcpv6 src=2001:db8::1:40000 fe=other be=elsewhere srv=x1 ts=00\n"
)


def test_sessions_name_each_switch_and_its_server():
    assert parse_sessions(SESS, "controllers") == [
        {
            "source": "198.18.1.10",
            "source_port": 50076,
            "frontend": "openflow",
            "backend": "controllers",
            "server": "ctl2",
        },
        {
            "source": "198.18.1.25",
            "source_port": 53742,
            "frontend": "openflow",
            "backend": "controllers",
            "server": "ctl3",
        },
    ]


def test_sessions_of_every_backend_and_ipv6_clients():
    sessions = parse_sessions(SESS, None)
    assert [s["server"] for s in sessions] == ["ctl2", "ctl3", "x1"]
    assert sessions[2]["source"] == "2001:db8::1"
    assert sessions[2]["source_port"] == 40000


def test_a_stream_on_a_server_that_counts_none_is_left_out():
    """As HAProxy 3.0 showed on the lab: ctl2 marked DOWN, sw1 on ctl3 again,
    and the old stream still listed on ctl2."""
    servers = [
        {"backend": "controllers", "server": "ctl2", "current_sessions": 0},
        {"backend": "controllers", "server": "ctl3", "current_sessions": 2},
    ]
    sessions = [
        {"backend": "controllers", "server": "ctl3", "source": "198.18.1.25"},
        {"backend": "controllers", "server": "ctl3", "source": "198.18.1.10"},
        {"backend": "controllers", "server": "ctl2", "source": "198.18.1.10"},
    ]
    assert live_sessions(servers, sessions) == sessions[:2]
