import socket
import threading

from ansible_collections.sdn_ha.control_plane.plugins.module_utils.haproxy import backend_sessions, parse_servers, query

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
        conn, _ = server.accept()
        assert conn.recv(100) == b"show stat\n"
        conn.sendall(STATS.encode())
        conn.close()

    thread = threading.Thread(target=answer)
    thread.start()
    assert query(path, "show stat") == STATS
    thread.join()
    server.close()


def test_backend_sessions_reads_the_backend_row():
    assert backend_sessions(STATS, "controllers") == 1
    assert backend_sessions(STATS, "controllers", "stot") == 3
    assert backend_sessions(STATS, "elsewhere") == 0
