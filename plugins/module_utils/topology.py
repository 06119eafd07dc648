# Copyright: sdn_ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of the shared sdn_ha_* topology, written once for the validation
module and its unit tests. Every error names the host, the variable and the
value, and says what would be valid."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ansible.module_utils.parsing.convert_bool import boolean

try:
    import netaddr
except ImportError:  # pragma: no cover - reported by the module
    netaddr = None

CONTROLLER_ROLES = ("master", "backup")
MODES = ("proxy", "nat")
FLEET_KEYS = ("name", "addresses", "datapath_ids", "segment", "ports")
MAX_FLEET_ENTRY = 65536


class FleetError(ValueError):
    """A fleet entry that cannot be expanded: which key, its value, and why."""

    def __init__(self, key: str, value, problem: str):
        super().__init__(problem)
        self.key, self.value, self.problem = key, value, problem


def _fleet_addresses(value) -> list:
    """A range 'A-B', a CIDR (its host addresses) or a list of addresses."""
    try:
        if isinstance(value, list):
            if any("/" in str(v) for v in value):
                raise ValueError(value)
            return [netaddr.IPAddress(str(v)) for v in value]
        text = str(value).replace(" ", "")
        if "-" in text:
            first, last = text.split("-", 1)
            span = netaddr.IPRange(first, last)
        elif "/" in text:
            span = netaddr.IPNetwork(text)
        else:
            return [netaddr.IPAddress(text)]
        if span.size > MAX_FLEET_ENTRY:
            raise FleetError("addresses", value, f"holds {span.size} addresses; one entry may hold {MAX_FLEET_ENTRY}")
        return list(span.iter_hosts() if isinstance(span, netaddr.IPNetwork) else span)
    except FleetError:
        raise
    except (netaddr.AddrFormatError, ValueError, TypeError) as exc:
        raise FleetError(
            "addresses",
            value,
            "is not a range, a CIDR or a list of addresses; write it as 198.18.1.100-198.18.1.163",
        ) from exc


def fleet_switches(fleet: list) -> list[dict]:
    """Expand sdn_ha_switch_fleet into one entry per switch: name, address,
    datapath id (hex string), segment and ports. Each fleet entry gives a
    name prefix, its switches' addresses, and the first datapath id; the
    n-th address (from 1) is switch NAME-n with datapath id FIRST + n - 1.
    Raises FleetError on the first problem (validate_topology reports them
    all, with the entry's index)."""
    return [switch for entry in fleet or [] for switch in _expand_entry(entry)]


def _expand_entry(entry) -> list[dict]:
    if not isinstance(entry, dict):
        raise FleetError("", entry, "is not a mapping with name, addresses and datapath_ids")
    unknown = sorted(set(entry) - set(FLEET_KEYS))
    if unknown:
        raise FleetError(unknown[0], entry[unknown[0]], f"is not a fleet key (known: {', '.join(FLEET_KEYS)})")
    name = entry.get("name")
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_" for c in name):
        raise FleetError("name", name, "must be a name of letters, digits, '-' and '_', such as emu")
    addresses = _fleet_addresses(entry.get("addresses"))
    if not addresses:
        raise FleetError("addresses", entry.get("addresses"), "holds no address")
    try:
        first = int(str(entry.get("datapath_ids")), 0)
        if first <= 0 or first + len(addresses) - 1 >= 2**64:
            raise ValueError
    except (TypeError, ValueError) as exc:
        raise FleetError(
            "datapath_ids",
            entry.get("datapath_ids"),
            f"is not a first datapath id for {len(addresses)} switch(es); write it as a quoted hex string "
            'such as "0x1000"',
        ) from exc
    ports = entry.get("ports") or []
    if not isinstance(ports, list) or not all(
        isinstance(p, dict) and {"name", "number", "vlan"} <= set(p) for p in ports
    ):
        raise FleetError("ports", ports, "must be a list of {name, number, vlan}, as sdn_ha_switch_ports")
    return [
        {
            "name": f"{name}-{n}",
            "address": str(address),
            "datapath_id": hex(first + n - 1),
            "segment": entry.get("segment"),
            "ports": ports,
        }
        for n, address in enumerate(addresses, start=1)
    ]


@dataclass
class Topology:
    """The shared schema, as the validation module receives it."""

    segments: dict
    front_vip: str
    back_vip: str
    hosts: dict
    front_segment: str = "transit"
    back_segment: str = "control"
    controller_segment: str = "control"
    reserved_addresses: list = field(default_factory=list)
    openflow_ports: list = field(default_factory=lambda: [6653])
    mode: str = "proxy"
    sync_segment: str = "sync"
    fleet: list = field(default_factory=list)
    switch_segment: str = "switch"
    tls: bool = False
    tls_ca: bool = False  # whether sdn_ha_tls_ca is given
    mirror: bool = True
    # The keepalived role's defaults for what a host's "vrrp" does not set.
    vrrp_defaults: dict = field(default_factory=lambda: {"front_vrid": 51, "back_vrid": 52, "priority": 100})


class Checker:
    """Collects every error instead of stopping at the first one."""

    def __init__(self, topo: Topology):
        self.topo = topo
        self.errors: list[str] = []
        self.networks: dict[str, netaddr.IPNetwork] = {}
        self.owners: dict[netaddr.IPAddress, str] = {}
        self.broken: set[str] = set()  # hosts whose sdn_ha_addresses is not even a mapping
        self.connected: dict[str, list] = {}  # host -> [(segment, interface)]

    def error(self, where: str, variable: str, value, problem: str) -> None:
        self.errors.append(f"{where}: {variable} = {value!r} {problem}")

    def note(self, where: str, variable: str, problem: str) -> None:
        """An error about a value that is missing: there is none to quote."""
        self.errors.append(f"{where}: {variable}: {problem}")

    def example(self, segment, host_part: int = 10, prefix: bool = True) -> str:
        """An address of `segment` to show in a fix hint (a generic one when
        the segment is unknown), so that a hint never names another subnet."""
        net = self.networks.get(segment)
        if net is None or net.size <= host_part + 1:
            return "198.18.1.10/24" if prefix else "198.18.1.10"
        address = net.network + host_part
        return f"{address}/{net.prefixlen}" if prefix else str(address)

    def ipv6(self, where, variable, value, parsed) -> bool:
        """IPv6 is refused everywhere: the topology is IPv4."""
        if parsed is not None and parsed.version == 6:
            self.error(
                where, variable, value, "is IPv6; the topology is IPv4 only (IPv6 is not supported yet): use IPv4"
            )
            return True
        return False

    def kind(self, where, variable, value, expected: type, example: str) -> bool:
        """Whether value has the YAML type the schema wants; if not, say so."""
        if isinstance(value, expected):
            return True
        names = {dict: "a mapping", list: "a list", str: "a string"}
        self.error(where, variable, value, f"is {_yaml_type(value)}, not {names[expected]}; write it as {example}")
        return False

    # -- parsing ---------------------------------------------------------
    def parse_network(self, where, variable, value):
        try:
            net = netaddr.IPNetwork(str(value), flags=netaddr.NOHOST)
        except (netaddr.AddrFormatError, ValueError, TypeError):
            self.error(where, variable, value, "is not a CIDR; write it as 198.18.1.0/24")
            return None
        if self.ipv6(where, variable, value, net):
            return None
        if "/" not in str(value):
            self.error(where, variable, value, "has no prefix length; write it as 198.18.1.0/24")
            return None
        if net.ip != netaddr.IPNetwork(str(value)).ip:
            self.error(where, variable, value, f"has host bits set; the network is {net}")
            return None
        return net

    def parse_interface(self, where, variable, value, segment=None):
        example = self.example(segment)
        if "/" not in str(value):
            self.error(where, variable, value, f"has no prefix length; write it as {example}")
            return None
        try:
            iface = netaddr.IPNetwork(str(value))
        except (netaddr.AddrFormatError, ValueError, TypeError):
            self.error(where, variable, value, f"is not an address/prefix; write it as {example}")
            return None
        return None if self.ipv6(where, variable, value, iface) else iface

    def parse_address(self, where, variable, value, segment=None):
        try:
            if "/" in str(value):
                raise ValueError
            ip = netaddr.IPAddress(str(value))
        except (netaddr.AddrFormatError, ValueError, TypeError):
            example = self.example(segment, 100, prefix=False)
            self.error(where, variable, value, f"is not an IP address; write it as {example}")
            return None
        return None if self.ipv6(where, variable, value, ip) else ip

    # -- checks ----------------------------------------------------------
    def check_segments(self) -> None:
        if not self.kind("all", "sdn_ha_segments", self.topo.segments, dict, "{switch: 198.18.1.0/24, ...}"):
            self.topo.segments = {}
            return
        for name, cidr in self.topo.segments.items():
            net = self.parse_network("all", f"sdn_ha_segments.{name}", cidr)
            if net is None:
                continue
            for other, other_net in self.networks.items():
                if net in other_net or other_net in net:
                    self.error(
                        "all",
                        f"sdn_ha_segments.{name}",
                        cidr,
                        f"overlaps sdn_ha_segments.{other} ({other_net}); segments must be disjoint",
                    )
            self.networks[name] = net

    def check_reserved(self) -> set:
        reserved = set()
        if not self.kind("all", "sdn_ha_reserved_addresses", self.topo.reserved_addresses, list, "[198.18.1.1]"):
            return reserved
        for value in self.topo.reserved_addresses:
            ip = self.parse_address("all", "sdn_ha_reserved_addresses", value)
            if ip is not None:
                reserved.add(ip)
        return reserved

    def claim(self, ip, where, variable, value, reserved) -> None:
        """An address may belong to one owner only, and never be reserved."""
        if ip in reserved:
            self.error(where, variable, value, "is in sdn_ha_reserved_addresses; choose another address")
        elif ip in self.owners:
            self.error(where, variable, value, f"is already used by {self.owners[ip]}; every address must be unique")
        else:
            self.owners[ip] = f"{where} ({variable})"

    def check_in_segment(self, ip, segment, where, variable, value) -> bool:
        net = self.networks.get(segment)
        if net is None:
            if segment not in self.topo.segments:
                self.error(
                    where,
                    variable,
                    value,
                    f"names segment {segment!r}, which is not in sdn_ha_segments "
                    f"(known: {', '.join(sorted(self.topo.segments)) or 'none'})",
                )
            return False
        if ip not in net:
            self.error(where, variable, value, f"is outside segment {segment!r} ({net}); use an address inside {net}")
            return False
        if ip in (net.network, net.broadcast) and net.prefixlen < 31:
            self.error(where, variable, value, f"is the network or broadcast address of {net}; use a host address")
            return False
        return True

    def check_vips(self, reserved) -> None:
        for variable, value, segment in (
            ("sdn_ha_front_vip", self.topo.front_vip, self.topo.front_segment),
            ("sdn_ha_back_vip", self.topo.back_vip, self.topo.back_segment),
        ):
            ip = self.parse_address("all", variable, value, segment)
            if ip is not None and self.check_in_segment(ip, segment, "all", variable, value):
                self.claim(ip, "all", variable, value, reserved)

    def check_host_addresses(self, host, spec, reserved) -> list:
        connected = []
        addresses = spec.get("addresses") or {}
        if not self.kind(host, "sdn_ha_addresses", addresses, dict, self.addresses_example(addresses)):
            self.broken.add(host)  # what depends on its addresses would only repeat this
            return connected
        for segment, value in sorted(addresses.items()):
            variable = f"sdn_ha_addresses.{segment}"
            iface = self.parse_interface(host, variable, value, segment)
            if iface is None:
                continue
            clash = next((c for c in connected if iface.ip in c[1] or c[1].ip in iface), None)
            if clash is not None:
                self.error(
                    host,
                    variable,
                    value,
                    f"is on the same subnet as sdn_ha_addresses.{clash[0]} ({clash[1]}); "
                    "each interface of a host needs its own subnet",
                )
                continue
            if self.check_in_segment(iface.ip, segment, host, variable, value):
                net = self.networks[segment]
                if iface.prefixlen != net.prefixlen:
                    self.error(host, variable, value, f"has prefix /{iface.prefixlen} but segment {segment!r} is {net}")
                self.claim(iface.ip, host, variable, value, reserved)
            connected.append((segment, iface))
        return connected

    def addresses_example(self, given) -> str:
        """sdn_ha_addresses as a mapping, from the addresses given in another
        shape where each lies in a known segment."""
        pairs = []
        for value in given if isinstance(given, list) else []:
            try:
                ip = netaddr.IPNetwork(str(value)).ip
            except (netaddr.AddrFormatError, ValueError, TypeError):
                break
            segment = next((name for name, net in self.networks.items() if ip in net), None)
            if segment is None:
                break
            pairs.append(f"{segment}: {value}")
        else:
            if pairs:
                return "{" + ", ".join(pairs) + "}"
        return "{SEGMENT: ADDRESS/PREFIX, ...} (segment name to address/prefix)"

    def check_routes(self, host, spec, connected, reserved) -> None:
        if host in self.broken:
            return
        routes = spec.get("routes") or []
        if not self.kind(host, "sdn_ha_routes", routes, list, "[{to: 198.18.3.0/24, via: 198.18.2.100}]"):
            return
        destinations: dict = {}
        for index, route in enumerate(routes):
            where = f"sdn_ha_routes[{index}]"
            to = route.get("to") if isinstance(route, dict) else None
            via = route.get("via") if isinstance(route, dict) else None
            if to is None or via is None:
                self.error(host, where, route, "needs both 'to' and 'via'")
                continue
            if to != "default":
                net = self.parse_network(host, f"{where}.to", to)
                if net is not None:
                    self.check_destination(host, f"{where}.to", to, net, connected)
            if to in destinations:
                self.error(host, f"{where}.to", to, f"is routed already by sdn_ha_routes[{destinations[to]}]; keep one")
            destinations.setdefault(to, index)
            hop = self.parse_address(host, f"{where}.via", via)
            if hop is None:
                continue
            if hop in reserved:
                self.error(host, f"{where}.via", via, "is in sdn_ha_reserved_addresses and is never a next hop")
            elif not any(hop in iface for _name, iface in connected):
                nets = ", ".join(str(iface.cidr) for _name, iface in connected) or "none"
                self.error(
                    host, f"{where}.via", via, f"is not on a directly connected subnet of {host} (connected: {nets})"
                )

    def check_destination(self, host, variable, value, net, connected) -> None:
        """A route's destination must not be (part of) a subnet the host is
        on: the kernel already reaches it through that interface, and the
        route would send that traffic to a router instead."""
        for segment, iface in connected:
            if net in iface.cidr or iface.cidr in net:
                self.error(
                    host,
                    variable,
                    value,
                    f"overlaps {iface.cidr}, which {host} is on directly (sdn_ha_addresses.{segment}); "
                    "route only subnets the host is not on",
                )
                return

    def check_controllers(self, reserved_unused=None) -> None:
        masters = []
        controllers = [h for h, s in self.topo.hosts.items() if "controllers" in (s.get("groups") or [])]
        for host in controllers:
            spec = self.topo.hosts[host]
            role = spec.get("controller_role")
            if role not in CONTROLLER_ROLES:
                self.error(host, "sdn_ha_controller_role", role, f"must be one of {', '.join(CONTROLLER_ROLES)}")
            elif role == "master":
                masters.append(host)
            if host not in self.broken and self.topo.controller_segment not in (spec.get("addresses") or {}):
                self.error(
                    host,
                    "sdn_ha_addresses",
                    spec.get("addresses"),
                    f"has no address on the controller segment {self.topo.controller_segment!r}",
                )
        if controllers and not masters:
            self.note(
                "controllers",
                "sdn_ha_controller_role",
                f"no controller is master (of {', '.join(sorted(controllers))}); give exactly one "
                "sdn_ha_controller_role: master",
            )
        elif len(masters) > 1:
            self.error(
                "controllers",
                "sdn_ha_controller_role",
                ", ".join(sorted(masters)),
                "names the master controller(s); exactly one controller must be master",
            )
        elif not controllers:
            self.error("all", "groups.controllers", [], "is empty; the pool needs one master and at least one backup")
        roles = [self.topo.hosts[h].get("controller_role") for h in controllers]
        if controllers and "backup" not in roles and all(r in CONTROLLER_ROLES for r in roles):
            self.note(
                "controllers",
                "sdn_ha_controller_role",
                f"no controller is a backup (of {', '.join(sorted(controllers))}); the backups carry the switches "
                "and the master never does: give at least one sdn_ha_controller_role: backup",
            )

    def check_fleet(self, reserved) -> dict:
        """sdn_ha_switch_fleet: every entry expands, each switch's address is
        inside its segment and owned by no one else, each datapath id is
        unique. Returns datapath id -> switch name, for check_switches."""
        seen: dict[int, str] = {}
        names = {h for h, s in self.topo.hosts.items() if "switches" in (s.get("groups") or [])}
        example = "[{name: emu, addresses: 198.18.1.100-198.18.1.163, datapath_ids: '0x1000'}]"
        if not self.kind("all", "sdn_ha_switch_fleet", self.topo.fleet or [], list, example):
            return seen
        for index, entry in enumerate(self.topo.fleet or []):
            variable = f"sdn_ha_switch_fleet[{index}]"
            try:
                switches = _expand_entry(entry)
            except FleetError as exc:
                self.error("all", f"{variable}.{exc.key}" if exc.key else variable, exc.value, exc.problem)
                continue
            segment = entry.get("segment") or self.topo.switch_segment
            if names & {s["name"] for s in switches}:
                clash = sorted(names & {s["name"] for s in switches})
                self.error(
                    "all",
                    f"{variable}.name",
                    entry["name"],
                    f"makes switch names already in use ({', '.join(clash[:3])}); Faucet needs one name a switch",
                )
                continue
            names |= {s["name"] for s in switches}
            for switch in switches:
                name, address, dpid = switch["name"], switch["address"], int(switch["datapath_id"], 16)
                ip = netaddr.IPAddress(address)
                if self.ipv6(name, f"{variable}.addresses", address, ip):
                    break
                if not self.check_in_segment(ip, segment, name, f"{variable}.addresses", address):
                    break
                self.claim(ip, name, f"{variable}.addresses", address, reserved)
                if dpid in seen:
                    self.error(
                        name, f"{variable}.datapath_ids", switch["datapath_id"], f"is already used by {seen[dpid]}"
                    )
                seen[dpid] = name
        return seen

    def check_switches(self, seen=None) -> None:
        seen = dict(seen or {})
        for host, spec in self.topo.hosts.items():
            if "switches" not in (spec.get("groups") or []):
                continue
            value = spec.get("datapath_id")
            try:
                dpid = int(str(value), 0)
                if not 0 < dpid < 2**64:
                    raise ValueError
            except (TypeError, ValueError):
                self.error(
                    host,
                    "sdn_ha_datapath_id",
                    value,
                    'is not a datapath id; write it as a quoted hex string such as "0x1"',
                )
                continue
            if dpid in seen:
                self.error(host, "sdn_ha_datapath_id", value, f"is already used by {seen[dpid]}")
            seen[dpid] = host

    def check_load_balancers(self) -> None:
        for host, spec in self.topo.hosts.items():
            if "load_balancers" not in (spec.get("groups") or []) or host in self.broken:
                continue
            addresses = spec.get("addresses") or {}
            for segment, vip in (
                (self.topo.front_segment, "sdn_ha_front_vip"),
                (self.topo.back_segment, "sdn_ha_back_vip"),
            ):
                if segment not in addresses:
                    self.error(
                        host, "sdn_ha_addresses", addresses, f"has no address on segment {segment!r}, where {vip} lives"
                    )

    def check_mode(self) -> None:
        if self.topo.mode not in MODES:
            self.error("all", "sdn_ha_mode", self.topo.mode, f"must be one of {', '.join(MODES)}")
            return
        if self.topo.mode != "nat":
            return
        # conntrackd keeps the LBs' NAT state in step over the sync segment.
        for host, spec in self.topo.hosts.items():
            if (
                "load_balancers" in (spec.get("groups") or [])
                and host not in self.broken
                and self.topo.sync_segment not in (spec.get("addresses") or {})
            ):
                self.error(
                    host,
                    "sdn_ha_addresses",
                    spec.get("addresses"),
                    f"has no address on segment {self.topo.sync_segment!r}, where conntrackd syncs in nat mode",
                )

    def check_tls(self) -> None:
        """TLS is ended by the proxy-mode relay: it needs that mode, the
        sidecar, a CA, and a certificate and key on every switch and LB."""
        if not self.topo.tls:
            return
        if self.topo.mode != "proxy":
            self.error(
                "all",
                "sdn_ha_mode",
                self.topo.mode,
                "cannot carry sdn_ha_tls: in nat mode the LB forwards the switches' bytes as they are, so the mirror's"
                " capture could not read a TLS stream and the master would get nothing; use sdn_ha_mode: proxy",
            )
        if not self.topo.mirror:
            self.error(
                "all",
                "sdn_ha_mirror",
                False,
                "leaves no one to end sdn_ha_tls: the relay of the mirror role ends the switches' TLS; turn it on",
            )
        if not self.topo.tls_ca:
            self.error(
                "all",
                "sdn_ha_tls_ca",
                "none",
                "is needed with sdn_ha_tls: the CA certificate (PEM) that signs them all",
            )
        for host, spec in sorted(self.topo.hosts.items()):
            if not {"switches", "load_balancers"} & set(spec.get("groups") or []):
                continue
            given = spec.get("tls") or []
            for part in ("cert", "key"):
                if part not in given:
                    self.error(
                        host,
                        f"sdn_ha_tls_{part}",
                        "none",
                        f"is needed with sdn_ha_tls: this host's {'certificate' if part == 'cert' else 'private key'}"
                        f" (PEM{', in Ansible Vault' if part == 'key' else ''})",
                    )

    def check_vrrp(self) -> None:
        """The LB pair's VRRP: ids and priorities in range, the two instances
        apart, and every LB with the same id for each instance (otherwise
        each LB is master alone). keepalived -t sees one host, and only once
        the plays before it have changed hosts."""
        lbs = sorted(h for h, s in self.topo.hosts.items() if "load_balancers" in (s.get("groups") or []))
        first: dict[str, tuple] = {}
        for host in lbs:
            given = self.topo.hosts[host].get("vrrp") or {}
            values = {**self.topo.vrrp_defaults, **given}
            ids = {}
            for key, low, high, what in (
                ("front_vrid", 1, 255, "a VRRP router id; use 1-255"),
                ("back_vrid", 1, 255, "a VRRP router id; use 1-255"),
                ("priority", 1, 254, "a VRRP priority; use 1-254 (255 is for the address owner)"),
            ):
                value = values.get(key)
                try:
                    number = int(str(value))
                except (TypeError, ValueError):
                    number = None
                if number is None or not low <= number <= high:
                    self.error(host, f"keepalived_{key}", value, f"is not {what}")
                elif key != "priority":
                    ids[key] = number
            if len(ids) == 2 and ids["front_vrid"] == ids["back_vrid"]:
                self.error(
                    host,
                    "keepalived_back_vrid",
                    values["back_vrid"],
                    "is also keepalived_front_vrid; the front and back VRRP instances need different ids",
                )
            for key, number in ids.items():
                if key not in first:
                    first[key] = (host, number)
                elif first[key][1] != number:
                    self.error(
                        host,
                        f"keepalived_{key}",
                        values[key],
                        f"differs from {first[key][0]}'s ({first[key][1]}); the LBs of the pair need the same id, "
                        "or each one is master alone",
                    )

    def check_advert_segment(self) -> None:
        """Every LB sends its VRRP adverts over the same segment, one it has
        an address on; otherwise the LBs never hear each other and both hold
        the VIPs. keepalived_vrrp_segment defaults to the sync segment when
        the LB has an address there, else to each VIP's own segment ('')."""
        lbs = sorted(h for h, s in self.topo.hosts.items() if "load_balancers" in (s.get("groups") or []))
        chosen: dict[str, str] = {}
        for host in lbs:
            if host in self.broken:
                continue
            spec = self.topo.hosts[host]
            addresses = spec.get("addresses") if isinstance(spec.get("addresses"), dict) else {}
            given = (spec.get("vrrp") or {}).get("vrrp_segment")
            if given is None:
                chosen[host] = self.topo.sync_segment if self.topo.sync_segment in addresses else ""
            elif given and given not in addresses:
                self.error(
                    host,
                    "keepalived_vrrp_segment",
                    given,
                    f"is a segment this LB has no address on ({', '.join(sorted(addresses)) or 'none'}); its VRRP "
                    "adverts go there. Name one of them, or '' for each VIP's own segment",
                )
            else:
                chosen[host] = given
        if len(set(chosen.values())) < 2:
            return
        # The segment most LBs use is meant; on a tie, the sync segment (the
        # default), so that the LB whose variable strayed is the one named.
        counts = {segment: list(chosen.values()).count(segment) for segment in chosen.values()}
        where = max(counts, key=lambda seg: (counts[seg], seg == self.topo.sync_segment, seg))
        first = min(host for host, segment in chosen.items() if segment == where)
        for host, segment in sorted(chosen.items()):
            if segment == where:
                continue
            given = (self.topo.hosts[host].get("vrrp") or {}).get("vrrp_segment")
            theirs = f"over segment {where!r}" if where else "over each VIP's own segment"
            if given is None and not segment:
                self.note(
                    host,
                    "sdn_ha_addresses",
                    f"has no address on segment {self.topo.sync_segment!r}, where {first} sends its VRRP adverts"
                    " (keepalived_vrrp_segment is that segment when the LB has an address there): the LBs would"
                    " never hear each other, and both would hold the VIPs. Give it an address there, such as"
                    f" {self.example(self.topo.sync_segment, 12)}, or set keepalived_vrrp_segment the same on every LB",
                )
            else:
                self.error(
                    host,
                    "keepalived_vrrp_segment",
                    segment if given is not None else f"{segment} (its default)",
                    f"differs from {first}'s adverts, {theirs}: the LBs would never hear each other, and both"
                    " would hold the VIPs. Set it the same on every LB",
                )

    def check_shared(self) -> None:
        """The topology variables that every host must see alike (the
        topology_hosts filter's SHARED_VARS), compared as the roles read
        them: a host that leaves one unset has its default, and "yes" is
        true. The most common value is taken as meant, and each host that
        differs is named."""
        hosts = sorted(self.topo.hosts)
        names = sorted({var for h in hosts for var in (self.topo.hosts[h].get("shared") or {})})
        fix = "a shared variable must be the same on every host: set it once, in group_vars/all"
        for var in names:
            groups: dict[str, list] = {}
            values: dict[str, object] = {}
            given: dict[str, bool] = {}
            for host in hosts:
                shared = self.topo.hosts[host].get("shared") or {}
                given[host] = var in shared
                value = shared_as_read(var, shared[var]) if var in shared else SHARED_DEFAULTS.get(var, _UNSET)
                key = "unset" if value is _UNSET else json.dumps(value, sort_keys=True, default=str)
                groups.setdefault(key, []).append(host)
                values[key] = value
            if len(groups) < 2:
                continue
            meant = max(groups, key=lambda k: (len(groups[k]), -hosts.index(groups[k][0])))
            where = f"on {_some(groups[meant])}"
            if meant == "unset":
                what = f"unset {where}"
            elif not any(given[h] for h in groups[meant]):
                what = f"{values[meant]!r} (the default) {where}"
            else:
                what = f"{values[meant]!r} {where}"
            for key, members in sorted(groups.items()):
                if key == meant:
                    continue
                for host in members:
                    if not given[host]:
                        default = f", so it is the default {values[key]!r}" if key != "unset" else ""
                        self.note(host, var, f"is not set for this host{default}, but is {what}; {fix}")
                    else:
                        self.error(host, var, values[key], f"differs from {what}; {fix}")

    def reaches(self, host: str, target) -> bool:
        """Whether `host` is on `target` (a network) or routes to all of it."""
        spec = self.topo.hosts[host]
        if any(target in iface.cidr for _name, iface in self.connected.get(host, [])):
            return True
        for route in spec.get("routes") or []:
            to = route.get("to") if isinstance(route, dict) else None
            if to == "default":
                return True
            try:
                if target in netaddr.IPNetwork(str(to)):
                    return True
            except (netaddr.AddrFormatError, ValueError, TypeError):
                continue
        return False

    def check_reachability(self) -> None:
        """The routes an operator forgets when a segment is added or moved:
        each LB must reach every segment with switches on it, each switch the
        front VIP, and in nat mode each backup every switch segment (its
        replies go to the switches' own addresses)."""
        where: dict[str, str] = {}  # switch segment -> a switch on it
        for host, spec in sorted(self.topo.hosts.items()):
            if "switches" in (spec.get("groups") or []) and host not in self.broken:
                for segment in spec.get("addresses") or {}:
                    where.setdefault(segment, host)
        for entry in self.topo.fleet or []:
            if isinstance(entry, dict):
                where.setdefault(entry.get("segment") or self.topo.switch_segment, f"fleet {entry.get('name')}")
        targets = [(seg, self.networks[seg], who) for seg, who in sorted(where.items()) if seg in self.networks]
        for host, spec in sorted(self.topo.hosts.items()):
            groups = spec.get("groups") or []
            if host in self.broken:
                continue
            backup_in_nat = self.topo.mode == "nat" and spec.get("controller_role") == "backup"
            needs = targets if "load_balancers" in groups or ("controllers" in groups and backup_in_nat) else []
            for segment, net, who in needs:
                if not self.reaches(host, net):
                    self.note(
                        host,
                        "sdn_ha_routes",
                        f"has no route to segment {segment!r} ({net}), where {who} is; add {{to: {net}, via: ...}} "
                        "with a next hop on a subnet of this host",
                    )
            if "switches" in groups:
                vip = self.parse_quietly(self.topo.front_vip)
                if vip is not None and not self.reaches(host, netaddr.IPNetwork(f"{vip}/32")):
                    self.note(
                        host,
                        "sdn_ha_routes",
                        f"has no route to sdn_ha_front_vip ({vip}), the one controller address a switch knows; "
                        "add {to: default, via: ...} with a next hop on the switch's subnet",
                    )

    @staticmethod
    def parse_quietly(value):
        try:
            return netaddr.IPAddress(str(value))
        except (netaddr.AddrFormatError, ValueError, TypeError):
            return None

    def check_ports(self) -> None:
        if not self.kind("all", "sdn_ha_openflow_ports", self.topo.openflow_ports, list, "[6653]"):
            return
        for port in self.topo.openflow_ports:
            if isinstance(port, str) and port.isdigit():
                port = int(port)
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
                self.error("all", "sdn_ha_openflow_ports", port, "must be a TCP port number (1-65535)")

    def run(self) -> list[str]:
        self.check_shared()
        self.check_segments()
        reserved = self.check_reserved()
        self.check_vips(reserved)
        for host in sorted(self.topo.hosts):
            spec = self.topo.hosts[host]
            connected = self.check_host_addresses(host, spec, reserved)
            self.connected[host] = connected
            self.check_routes(host, spec, connected, reserved)
        self.check_controllers()
        self.check_switches(self.check_fleet(reserved))
        self.check_load_balancers()
        self.check_vrrp()
        self.check_advert_segment()
        self.check_ports()
        self.check_mode()
        self.check_tls()
        if not self.errors:  # routes only mean something once the addresses do
            self.check_reachability()
        return self.errors


_UNSET = object()
# What the roles take for a shared variable a host leaves unset.
SHARED_DEFAULTS = {
    "sdn_ha_mode": "proxy",
    "sdn_ha_front_segment": "transit",
    "sdn_ha_back_segment": "control",
    "sdn_ha_controller_segment": "control",
    "sdn_ha_sync_segment": "sync",
    "sdn_ha_switch_segment": "switch",
    "sdn_ha_reserved_addresses": [],
    "sdn_ha_openflow_ports": [6653],
    "sdn_ha_switch_fleet": [],
    "sdn_ha_tls": False,
    "sdn_ha_mirror": True,
}


def shared_as_read(var: str, value):
    """A shared variable's value as the roles read it: booleans as Ansible
    reads them, ports as numbers."""
    if var in ("sdn_ha_tls", "sdn_ha_mirror"):
        try:
            return boolean(value, strict=True)
        except TypeError:
            return value
    if var == "sdn_ha_openflow_ports" and isinstance(value, list):
        return [int(p) if isinstance(p, str) and p.isdigit() else p for p in value]
    return value


def _some(hosts: list, shown: int = 3) -> str:
    """'lb1, lb2 and 3 more'."""
    if len(hosts) <= shown:
        return ", ".join(hosts)
    return f"{', '.join(hosts[:shown])} and {len(hosts) - shown} more"


def _yaml_type(value) -> str:
    """How YAML would call what the inventory gave."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if value is None:
        return "empty"
    return "a string"


def validate(topo: Topology) -> list[str]:
    """Return every problem in the topology; an empty list means it is valid."""
    return Checker(topo).run()
