#!/usr/bin/env bash
# Real Open vSwitch switches for the lab's fleet, each in a network namespace
# of its own with its own address, so that it reaches the controller from
# that address as a switch of its own would. Lab only; lab/fleet.yml runs it
# on the rack host (fleet1).
#
#   fleet-ovs.sh start NAME ADDRESS/PREFIX GATEWAY DATAPATH_ID CONTROLLER
#   fleet-ovs.sh stop NAME
#   fleet-ovs.sh status NAME     # the controller connection's state, as JSON
#
# Each switch is one ovsdb-server and one ovs-vswitchd, as systemd units in
# its namespace, with a userspace (netdev) bridge br0 whose controller is
# CONTROLLER (tcp:VIP:PORT). Max backoff and inactivity probe keep Open
# vSwitch's defaults (8 s and 5 s): a fleet this collection does not manage.
# The namespace's interface is a macvlan of the rack's own interface, with a
# MAC of its own, on the fleet segment.
set -euo pipefail

action=$1 name=$2
netns=sdnha-$name
run=/run/sdnha-fleet/$name
vsctl=(ovs-vsctl --db="unix:$run/db.sock" --timeout=10)

case $action in
start)
    address=$3 gateway=$4 dpid=$5 controller=$6
    if ! ip netns pids "$netns" > /dev/null 2>&1; then
        ip netns add "$netns"
    fi
    if ! ip -n "$netns" link show mv0 > /dev/null 2>&1; then
        uplink=$(ip -o route get "$gateway" | sed -n 's/.* dev \([^ ]*\).*/\1/p')
        ip link add link "$uplink" name "mv-$name" type macvlan mode bridge
        ip link set "mv-$name" netns "$netns" name mv0
        ip -n "$netns" addr add "$address" dev mv0
        ip -n "$netns" link set lo up
        ip -n "$netns" link set mv0 up
        ip -n "$netns" route add default via "$gateway"
    fi
    mkdir -p "$run"
    [[ -e $run/conf.db ]] || ovsdb-tool create "$run/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    in_netns=(-p "NetworkNamespacePath=/run/netns/$netns" --setenv "OVS_RUNDIR=$run" --collect)
    if ! systemctl is-active --quiet "sdnha-ovsdb-$name"; then
        systemd-run --unit "sdnha-ovsdb-$name" "${in_netns[@]}" ovsdb-server "$run/conf.db" \
            --remote="punix:$run/db.sock" --unixctl="$run/ovsdb.ctl" --pidfile="$run/ovsdb.pid"
        for _ in $(seq 50); do [[ -S $run/db.sock ]] && break; sleep 0.1; done
        "${vsctl[@]}" --no-wait init
    fi
    if ! systemctl is-active --quiet "sdnha-vswitchd-$name"; then
        systemd-run --unit "sdnha-vswitchd-$name" "${in_netns[@]}" ovs-vswitchd "unix:$run/db.sock" \
            --unixctl="$run/vswitchd.ctl" --pidfile="$run/vswitchd.pid"
    fi
    "${vsctl[@]}" --may-exist add-br br0 \
        -- set bridge br0 datapath_type=netdev protocols=OpenFlow13 fail_mode=secure \
        "other-config:datapath-id=$(printf '%016x' "$dpid")" \
        -- set-controller br0 "$controller"
    ;;
stop)
    systemctl stop "sdnha-vswitchd-$name" "sdnha-ovsdb-$name" 2> /dev/null || true
    ip netns del "$netns" 2> /dev/null || true
    rm -rf "$run"
    ;;
status)
    "${vsctl[@]}" --format=json --columns=is_connected,status list controller
    ;;
*)
    echo "usage: $0 start|stop|status NAME ..." >&2
    exit 2
    ;;
esac
