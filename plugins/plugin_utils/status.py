# Copyright: sdn_ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build the status view from what playbooks/status.yml registered on each
host, and render it as lines for people."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from ansible_collections.sdn_ha.control_plane.plugins.plugin_utils.ovs import ovs_records

_DP_STATUS = re.compile(r'^dp_status\{[^}]*dp_name="([^"]+)"[^}]*\}\s+(\S+)', re.M)
_MIRROR = re.compile(r"^sdn_ha_mirror_(\w+?)(?:_total)?\s+(\d+)$", re.M)
_SAMPLE = re.compile(r"^(\w+)(?:\{([^}]*)\})?\s+(\S+)", re.M)
_LABEL = re.compile(r'(\w+)="([^"]*)"')
_CT_REPLY_SOURCE = re.compile(r"ESTABLISHED src=\S+ dst=\S+ sport=\d+ dport=\d+ src=(\S+)")
SHOWN_DATAPATHS = 6


def _registered(hv: Mapping, name: str) -> Mapping:
    value = hv.get(name)
    return value if isinstance(value, Mapping) else {}


def datapaths_up(metrics: str) -> list[str]:
    """Datapath names whose Faucet gauge dp_status is 1."""
    return sorted(name for name, value in _DP_STATUS.findall(metrics or "") if float(value) == 1.0)


def prometheus_value(metrics: str, name: str, **labels: str) -> float:
    """The sum of the samples of metric `name` whose labels include `labels`
    (0.0 when there is none), from Prometheus text."""
    total = 0.0
    for sample, label_text, value in _SAMPLE.findall(metrics or ""):
        if sample == name and labels.items() <= dict(_LABEL.findall(label_text or "")).items():
            total += float(value)
    return total


def mirror_counters(metrics: str) -> dict[str, int]:
    """The sidecar's Prometheus counters, without the prefix and suffix."""
    return {name: int(value) for name, value in _MIRROR.findall(metrics or "")}


def nat_sessions(text: str, names: Mapping[str, str]) -> dict:
    """From the NAT task's output (the prober's assignment, "---", then the
    conntrack table): how many switches the map sends to each controller and
    how many established sessions each one serves, by controller name."""
    assignment, _sep, table = (text or "").partition("---")
    assigned: dict[str, int] = {}
    for line in assignment.splitlines():
        if len(fields := line.split()) == 2:
            name = names.get(fields[1].rsplit(":", 1)[0], fields[1])
            assigned[name] = assigned.get(name, 0) + 1
    sessions: dict[str, int] = {}
    for address in _CT_REPLY_SOURCE.findall(table):
        name = names.get(address, address)
        sessions[name] = sessions.get(name, 0) + 1
    return {"assigned": dict(sorted(assigned.items())), "sessions": dict(sorted(sessions.items()))}


def guard_counters(text: str) -> dict[str, int] | None:
    """A table's counters (packets each) from `nft --json list counters
    table ...` (the guard's, the identity gate's); None when the table is
    not loaded."""
    try:
        entries = json.loads(text).get("nftables", [])
    except (ValueError, AttributeError):
        return None
    return {e["counter"]["name"]: int(e["counter"].get("packets", 0)) for e in entries if "counter" in e}


def pool_disagreement(view: Mapping) -> dict[str, dict[str, str]]:
    """The controllers that the LBs see differently: in proxy mode, each
    HAProxy's state of the server; in NAT mode, whether the prober's map
    sends any switch to it. Only LBs that answered are compared."""
    seen: dict[str, dict[str, str]] = {}
    if view.get("mode") == "nat":
        answered = {lb: nat["assigned"] for lb, nat in view.get("nat", {}).items() if nat["assigned"]}
        for name in {name for assigned in answered.values() for name in assigned}:
            seen[name] = {lb: "mapped" if name in assigned else "not mapped" for lb, assigned in answered.items()}
    else:
        for lb, servers in view.get("haproxy", {}).items():
            for server in servers:
                seen.setdefault(server["server"], {})[lb] = (str(server.get("status") or "").split() or ["?"])[0]
    return {
        name: dict(sorted(states.items()))
        for name, states in sorted(seen.items())
        if len(states) > 1 and len(set(states.values())) > 1
    }


def status_view(hostvars: Mapping, groups: Mapping, front_vip: str, mode: str = "proxy") -> dict:
    lbs = groups.get("load_balancers", [])
    names = {
        str(address).split("/", 1)[0]: ctl
        for ctl in groups.get("controllers", [])
        for address in (hostvars[ctl].get("sdn_ha_addresses") or {}).values()
    }
    switch_names = {
        str(address).split("/", 1)[0]: sw
        for sw in groups.get("switches", [])
        for address in (hostvars[sw].get("sdn_ha_addresses") or {}).values()
    }
    view = {
        "front_vip": front_vip,
        "mode": mode,
        "nat": {},
        "vip_holders": [],
        "split_brain": [],
        "vrrp": {},
        "guard": {},
        "gate": {},
        "mirror": {},
        "haproxy": {},
        "carriers": {},
        "controllers": {},
        "switches": {},
    }
    for lb in lbs:
        hv = hostvars[lb]
        facts = hv.get("ansible_facts", {}) or {}
        if front_vip in facts.get("all_ipv4_addresses", []):
            view["vip_holders"].append(lb)
        haproxy = _registered(hv, "haproxy_status")
        view["haproxy"][lb] = list(haproxy.get("servers", []))
        # Which backup carries each switch's session: the switch's name where
        # the inventory has it, else its address (an emulated switch). Behind
        # the relay (TLS) HAProxy sees 127.0.0.1 only: those by their port.
        view["carriers"][lb] = {
            switch_names.get(s["source"])
            or (f"relay:{s['source_port']}" if s["source"].startswith("127.") else s["source"]): s["server"]
            for s in haproxy.get("sessions", [])
        }
        nat = _registered(hv, "nat_status")
        if "stdout" in nat:
            view["nat"][lb] = nat_sessions(nat["stdout"], names)
        view["mirror"][lb] = mirror_counters(_registered(hv, "mirror_status").get("content", ""))
        guard = _registered(hv, "keepalived_guard_status")
        if guard and not guard.get("unreachable"):
            view["guard"][lb] = guard_counters(guard.get("stdout") or "")
        gate = _registered(hv, "mirror_gate_status")
        if "rc" in gate:
            view["gate"][lb] = guard_counters(gate.get("stdout") or "")
        vrrp = _registered(hv, "keepalived_state")
        reachable = bool(vrrp) and not vrrp.get("unreachable")
        view["vrrp"][lb] = (vrrp.get("stdout") or "").strip() or ("unknown" if reachable else "unreachable")
    masters = [lb for lb, state in view["vrrp"].items() if state == "MASTER"]
    claimants = sorted(set(masters) | set(view["vip_holders"]))
    view["split_brain"] = claimants if len(claimants) > 1 else []
    view["disagreement"] = pool_disagreement(view)
    for ctl in groups.get("controllers", []):
        hv = hostvars[ctl]
        service = _registered(hv, "controller_service_status")
        view["controllers"][ctl] = {
            "role": hv.get("sdn_ha_controller_role", "unknown"),
            "service": "unreachable"
            if service.get("unreachable") or not service
            else service.get("status", {}).get("ActiveState", "unknown"),
            "datapaths_up": datapaths_up(_registered(hv, "controller_metrics_status").get("content", "")),
        }
    for sw in groups.get("switches", []):
        out = _registered(hostvars[sw], "switch_status").get("stdout") or ""
        view["switches"][sw] = ovs_records(out) if out.startswith("{") else []
    return view


def status_lines(view: Mapping) -> list[str]:
    lines = [
        f"front VIP {view['front_vip']} held by: {', '.join(view['vip_holders']) or 'NOBODY'}"
        f" ({view.get('mode', 'proxy')} mode)"
    ]
    if view.get("split_brain"):
        lines.append(
            f"SPLIT BRAIN: {', '.join(view['split_brain'])} all claim the VIPs; they do not hear each other's"
            " VRRP adverts (check the advert segment between them)"
        )
    lines += [f"vrrp@{lb}: {state}" for lb, state in view["vrrp"].items()]
    for name, states in view.get("disagreement", {}).items():
        lines.append(
            f"LBs disagree on {name}: {', '.join(f'{state} on {lb}' for lb, state in states.items())}"
            " (a failover changes which controllers serve)"
        )
    for lb, counters in view.get("guard", {}).items():
        if counters is None:
            lines.append(f"guard@{lb}: NOT LOADED (anyone may reach the VIP's OpenFlow ports and send VRRP)")
        else:
            lines.append(
                f"guard@{lb}: refused {counters.get('openflow_refused', 0)} packet(s) to the VIP's OpenFlow ports"
                f" from non-switches, {counters.get('vrrp_refused', 0)} VRRP advert(s) from non-peers"
            )
    for lb, counters in view.get("gate", {}).items():
        if counters is None:
            lines.append(f"identity@{lb}: gate table NOT LOADED (any switch address may claim any datapath id)")
        else:
            lines.append(
                f"identity@{lb}: gate proved {counters.get('proven', 0)} session(s), refused"
                f" {counters.get('refused', 0)} (a datapath id not bound to their address, or no OpenFlow handshake)"
            )
    for lb, m in view.get("mirror", {}).items():
        seen = "seen whole" if "capture_active" in m else "relayed"  # captured, or relayed by the sidecar
        if m:
            lines.append(
                f"mirror@{lb}: {m.get('sessions', 0)} session(s), master connected {m.get('master_connected', 0)}; "
                f"{seen} {m.get('relayed_messages', 0)} = mirrored {m.get('mirrored_messages', 0)} "
                f"+ filtered {m.get('filtered_messages', 0)} + dropped {m.get('dropped_messages', 0)}; "
                f"master writes swallowed {m.get('swallowed_messages', 0)}"
            )
            if "identity_addresses" in m:
                # The relay refuses such a session; the capture does not feed the master from it.
                done = "not mirrored" if "capture_active" in m else "refused"
                lines.append(
                    f"identity@{lb}: {m.get('identity_refused', 0)} session(s) {done} for claiming a datapath id"
                    f" not bound to their address ({m['identity_addresses']} addresses bound)"
                )
            if "capture_active" in m:
                lines.append(
                    f"capture@{lb}: {'on (holds the VIP)' if m['capture_active'] else 'idle (standby)'}; "
                    f"packets {m.get('capture_packets', 0)}, dropped by the kernel {m.get('capture_kernel_drops', 0)}, "
                    f"bytes never seen {m.get('unseen_bytes', 0)}"
                )
            if "sync_views_known" in m:
                lines.append(
                    f"view sync@{lb}: peer's views held {m['sync_views_known']}, received {m.get('sync_received', 0)}, "
                    f"sent {m.get('sync_pushed', 0)}, connections refused {m.get('sync_refused', 0)}"
                )
    for lb, nat in view.get("nat", {}).items():
        assigned = ", ".join(f"{name} {count}" for name, count in nat["assigned"].items()) or "none (map empty)"
        sessions = ", ".join(f"{name} {count}" for name, count in nat["sessions"].items()) or "none"
        lines.append(f"nat@{lb}: switches mapped to {assigned}; sessions in the connection table: {sessions}")
    for lb, servers in view["haproxy"].items():
        if view.get("mode") == "nat":
            lines.append(f"haproxy@{lb}: off the path (nat mode)")
            continue
        if not servers:
            lines.append(f"haproxy@{lb}: no stats (HAProxy down or host unreachable)")
        for s in servers:
            lines.append(
                f"haproxy@{lb}: {s['server']} {s['address']} {s['status']} ({s['check_status']}), "
                f"sessions now {s['current_sessions']}, total {s['total_sessions']}"
            )
        carried = sorted(view.get("carriers", {}).get(lb, {}).items())
        if carried:
            shown = ", ".join(f"{switch} on {server}" for switch, server in carried[:SHOWN_DATAPATHS])
            more = f" (and {len(carried) - SHOWN_DATAPATHS} more)" if len(carried) > SHOWN_DATAPATHS else ""
            lines.append(f"haproxy@{lb}: carries {shown}{more}")
    for name, c in view["controllers"].items():
        up = c["datapaths_up"]
        shown = ", ".join(up[:SHOWN_DATAPATHS]) + (", ..." if len(up) > SHOWN_DATAPATHS else "")
        lines.append(
            f"controller {name} ({c['role']}): faucet {c['service']}, "
            f"datapaths up: {f'{len(up)} ({shown})' if len(up) > SHOWN_DATAPATHS else shown or 'none'}"
        )
    for sw, conns in view["switches"].items():
        if not conns:
            lines.append(f"switch {sw}: no controller (unreachable or unconfigured)")
        for c in conns:
            state = c.get("status", {}).get("state", "?") if isinstance(c.get("status"), dict) else "?"
            lines.append(
                f"switch {sw} -> {c.get('target')}: connected={c.get('is_connected')} "
                f"role={c.get('role')} state={state}"
            )
    return lines
