#!/usr/bin/env bash
# Which backup HAProxy's `balance source` with `hash-type consistent` picks
# for each switch-segment address, on this LB's own HAProxy: a throwaway
# instance on loopback whose backend names its servers as the lab's does
# (ctl2, ctl3), one frontend per address that sets the connection's source
# to it. Prints "ADDRESS:SERVER" for .FIRST to .LAST. Lab only; bounded
# (one connection per address, 10 s at most). Used to place sw2 (see
# docs/architecture.md, Debian 12 and 13). In a throwaway container of a
# release's lab image, with the lab's podman settings exported:
#   podman run --rm --network none -v $PWD/lab/hash-probe.sh:/probe.sh:ro \
#     --entrypoint /bin/bash localhost/sdn-ha-lab-trixie:TAG /probe.sh 10 34
set -euo pipefail
first=${1:-10} last=${2:-34}
work=$(mktemp -d)
trap 'kill "$(cat "$work/pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$work"' EXIT
{
  printf 'defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n'
  for n in $(seq "$first" "$last"); do
    printf 'frontend f%s\n  bind 127.0.0.1:%s\n' "$n" $((17000 + n))
    printf '  tcp-request connection set-src ipv4(198.18.1.%s)\n  default_backend controllers\n' "$n"
  done
  printf 'backend controllers\n  balance source\n  hash-type consistent\n'
  printf '  server ctl2 127.0.0.1:18002\n  server ctl3 127.0.0.1:18003\n'
} > "$work/haproxy.cfg"
# Two listeners stand in for the servers and record which one each
# connection reached, in order.
python3 - "$work/accepted" <<'PY' &
import select, socket, sys, time
listeners = {}
for port, name in ((18002, "ctl2"), (18003, "ctl3")):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    listeners[s] = name
with open(sys.argv[1], "w") as out:
    end = time.time() + 10
    while time.time() < end:
        for s in select.select(list(listeners), [], [], 0.2)[0]:
            conn, _ = s.accept()
            out.write(listeners[s] + "\n")
            out.flush()
            conn.close()
PY
sleep 0.5
haproxy -f "$work/haproxy.cfg" -D -p "$work/pid"
sleep 0.5
for n in $(seq "$first" "$last"); do
  python3 -c "import socket, time; s = socket.create_connection(('127.0.0.1', $((17000 + n)))); time.sleep(0.1); s.close()"
  sleep 0.05
done
sleep 0.3
paste -d: <(seq "$first" "$last" | sed 's/^/198.18.1./') "$work/accepted" | tr '\n' ' '
echo
