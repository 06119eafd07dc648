# Copyright: sdn_ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Derive per-role data from the shared sdn_ha_* topology. Controller-side
only; each filter plugin is a thin wrapper around one function here."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.sdn_ha.control_plane.plugins.module_utils.topology import (
    SHARED_DEFAULTS,
    FleetError,
    fleet_switches,
    shared_as_read,
)

_TOPOLOGY_VARS = {
    "addresses": "sdn_ha_addresses",
    "routes": "sdn_ha_routes",
    "controller_role": "sdn_ha_controller_role",
    "datapath_id": "sdn_ha_datapath_id",
}


_VRRP_VARS = ("front_vrid", "back_vrid", "priority", "vrrp_segment")

# The topology every host must see alike. The validator runs once, with one
# host's values, while each role on a host uses that host's own: a value set
# for some hosts only (host_vars, a group's vars) splits the deployment.
SHARED_VARS = (
    "sdn_ha_mode",
    "sdn_ha_segments",
    "sdn_ha_front_vip",
    "sdn_ha_back_vip",
    "sdn_ha_front_segment",
    "sdn_ha_back_segment",
    "sdn_ha_controller_segment",
    "sdn_ha_sync_segment",
    "sdn_ha_switch_segment",
    "sdn_ha_reserved_addresses",
    "sdn_ha_openflow_ports",
    "sdn_ha_switch_fleet",
    "sdn_ha_tls",
    "sdn_ha_mirror",
)
# Longer values (a fleet) reach the validator as a digest, not whole.
SHARED_INLINE = 200


def shared_value(value):
    """A shared variable's value as the validator compares it: itself, or a
    digest when its JSON is longer than SHARED_INLINE characters."""
    text = json.dumps(value, sort_keys=True, default=str)
    if len(text) <= SHARED_INLINE:
        return value
    return f"<a value of {len(text)} characters, sha256 {hashlib.sha256(text.encode()).hexdigest()[:16]}>"


def host_address(address: str) -> str:
    """'198.18.2.11/24' -> '198.18.2.11'."""
    return str(address).split("/", 1)[0]


def topology_hosts(hostvars: Mapping, hosts: Iterable[str]) -> list[dict]:
    """The per-host slice of the shared schema, as validate_topology takes it."""
    result = []
    for name in hosts:
        hv = hostvars[name]
        entry = {"name": name, "groups": list(hv.get("group_names", []))}
        for key, var in _TOPOLOGY_VARS.items():
            value = hv.get(var)
            if value is not None:
                entry[key] = str(value) if key == "datapath_id" else value
        # Whether the TLS material is there, never what it is.
        entry["tls"] = [part for part in ("cert", "key") if hv.get(f"sdn_ha_tls_{part}")]
        shared = {var: shared_value(hv.get(var)) for var in SHARED_VARS if hv.get(var) is not None}
        if shared:
            entry["shared"] = shared
        # The VRRP values the inventory sets (the keepalived role's defaults fill the rest).
        vrrp = {key: hv.get(f"keepalived_{key}") for key in _VRRP_VARS if hv.get(f"keepalived_{key}") is not None}
        # keepalived_vrrp_segment set to null reads as false in the role: each VIP's own segment.
        if "keepalived_vrrp_segment" in hv and hv.get("keepalived_vrrp_segment") is None:
            vrrp["vrrp_segment"] = ""
        if vrrp:
            entry["vrrp"] = vrrp
        result.append(entry)
    return result


def interface_for(facts: Mapping, address: str) -> str:
    """The name of the interface that holds `address`, found in gathered facts."""
    wanted = host_address(address)
    for name in facts.get("interfaces", []):
        iface = facts.get(name.replace("-", "_").replace(".", "_"), {})
        ipv4 = [iface.get("ipv4", {}), *iface.get("ipv4_secondaries", [])]
        if any(entry.get("address") == wanted for entry in ipv4):
            return name
    raise AnsibleFilterError(
        f"no interface holds {wanted}; the host's addresses are "
        f"{', '.join(facts.get('all_ipv4_addresses', [])) or 'none'}. "
        "Check sdn_ha_addresses against the host's real configuration."
    )


def controller_pool(
    hostvars: Mapping, hosts: Iterable[str], role: str = "backup", segment: str = "control"
) -> list[dict]:
    """Controllers with the given job, each as {name, address} on `segment`."""
    pool = []
    for name in hosts:
        hv = hostvars[name]
        if hv.get("sdn_ha_controller_role") != role:
            continue
        addresses = hv.get("sdn_ha_addresses") or {}
        if segment not in addresses:
            raise AnsibleFilterError(f"{name}: sdn_ha_addresses has no {segment!r} address")
        pool.append({"name": name, "address": host_address(addresses[segment])})
    return pool


def switches(hostvars: Mapping, hosts: Iterable[str], fleet: list | None = None, segment: str = "switch") -> list[dict]:
    """Every switch the control plane serves, Ansible hosts and the fleet
    (C(sdn_ha_switch_fleet)) alike: name, address, datapath id, ports, and
    whether Ansible manages it. A managed switch's address is its only one,
    or the one on `segment`."""
    result = []
    for name in hosts:
        hv = hostvars[name]
        addresses = hv.get("sdn_ha_addresses") or {}
        if len(addresses) != 1 and segment not in addresses:
            raise AnsibleFilterError(f"{name}: sdn_ha_addresses has {len(addresses)} addresses, none on {segment!r}")
        address = addresses.get(segment) or next(iter(addresses.values()), None)
        result.append(
            {
                "name": name,
                "address": host_address(address) if address else None,
                "datapath_id": str(hv.get("sdn_ha_datapath_id")),
                "ports": hv.get("sdn_ha_switch_ports") or [],
                "managed": True,
            }
        )
    try:
        result += [{**switch, "managed": False} for switch in fleet_switches(fleet or [])]
    except FleetError as exc:
        raise AnsibleFilterError(f"sdn_ha_switch_fleet: {exc.key} = {exc.value!r} {exc.problem}") from exc
    return result


# The processes on a load balancer's path, each with the systemd unit that
# runs it and the `pgrep` arguments that find it (a regular expression: `.`
# stands for the space, and `[s]` for the first letter, so that a shell whose
# own command line holds the pattern does not find itself). keepalived tracks
# them; the rolling restart restarts them; tests and benchmarks find them.
ON_PATH = {
    "haproxy": {"unit": "haproxy", "pgrep": "-x haproxy"},
    "sdn_ha_mirror": {"unit": "sdn-ha-mirror", "pgrep": "-f [s]dn_ha_mirror.--listen"},  # the relay
    "nat_prober": {"unit": "sdn-ha-prober", "pgrep": "-f [s]dn_ha_mirror.probe"},
    "conntrackd": {"unit": "conntrackd", "pgrep": "-x conntrackd"},
    # NAT mode's identity gate: every packet of a session not yet proven.
    "identity_gate": {"unit": "sdn-ha-identity", "pgrep": "-f [s]dn_ha_mirror.gate"},
}


# The variables the modes are decided from.
DATA_PATH_VARS = ("sdn_ha_mode", "sdn_ha_tls", "sdn_ha_mirror")


def data_path(hostvars: Mapping) -> dict:
    """What carries the switches' sessions on a load balancer, and what
    feeds the master, decided once from DATA_PATH_VARS (unset or null ones
    take the roles' defaults). Every role and playbook takes the modes from
    here, through the data_path lookup."""

    def shared(var):
        value = hostvars.get(var)
        return shared_as_read(var, SHARED_DEFAULTS[var] if value is None else value)

    mode, tls, mirror = shared("sdn_ha_mode"), bool(shared("sdn_ha_tls")), bool(shared("sdn_ha_mirror"))
    proxy, nat = mode == "proxy", mode == "nat"
    # With TLS the mirror's relay ends it on the front VIP, in front of
    # HAProxy: the kernel's copies of a TLS stream are ciphertext.
    relay = proxy and tls and mirror
    capture = mirror and not relay
    tracked = (["haproxy"] + (["sdn_ha_mirror"] if relay else [])) if proxy else ["nat_prober"]
    return {
        "mode": mode,
        "haproxy": proxy,
        "nat": nat,
        "mirror": mirror,
        "relay": relay,
        "capture": capture,
        # The identity gate binds each datapath id to its switch's address
        # on the way in, unless the relay does it.
        "gate": not relay,
        # The active LB's capture sends each switch's view to the standby:
        # NAT mode only, where a takeover keeps the sessions.
        "view_sync": capture and nat,
        "prober": nat,
        "tracked": [{"name": name, **ON_PATH[name]} for name in tracked],
        # The services a restart of the data path restarts, in order.
        "services": [ON_PATH[name]["unit"] for name in (["haproxy"] if proxy else ["conntrackd", "nat_prober"])]
        + (["sdn-ha-mirror"] if mirror else []),
        # Every process that can be on the path, in any mode, by name.
        "processes": {name: dict(process) for name, process in ON_PATH.items()},
    }
