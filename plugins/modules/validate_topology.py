#!/usr/bin/python
# Copyright: sdn_ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: validate_topology
short_description: Check the shared SDN HA topology before any host changes
version_added: 0.1.0
description:
  - Checks the C(sdn_ha_*) topology variables of a whole inventory at once,
    with netaddr, and fails with every problem it finds.
  - Each message names the host, the variable and the value, and says what
    would be valid.
  - This module's options are the reference for the shared topology schema.
    The C(sdn_ha_*) inventory variable that feeds each option is named in its
    description.
  - Run it once, on the control node, before any role touches a host.
    The C(sdn_ha.control_plane.site) playbook does this first.
  - It never changes anything, so it is safe in check mode.
requirements:
  - netaddr (on the control node)
author:
  - sdn_ha maintainers (@sdn-ha)
extends_documentation_fragment:
  - sdn_ha.control_plane.attributes
  - sdn_ha.control_plane.attributes.read_only
attributes:
  platform:
    support: full
    platforms: posix
    details:
      - It runs on the control node (C(localhost)) and contacts no host.
options:
  segments:
    description:
      - C(sdn_ha_segments). Segment name to IPv4 CIDR.
      - Segments must not overlap.
      - Any type is taken, so that a wrong one is reported naming the variable; a mapping is valid.
    type: raw
    required: true
  front_vip:
    description:
      - C(sdn_ha_front_vip). The one controller address the switches use.
    type: str
    required: true
  back_vip:
    description:
      - C(sdn_ha_back_vip). The controllers' default gateway.
    type: str
    required: true
  front_segment:
    description: C(sdn_ha_front_segment). The segment that holds the front VIP.
    type: str
    default: transit
  back_segment:
    description: C(sdn_ha_back_segment). The segment that holds the back VIP.
    type: str
    default: control
  controller_segment:
    description: C(sdn_ha_controller_segment). The segment every controller has an address on.
    type: str
    default: control
  reserved_addresses:
    description:
      - C(sdn_ha_reserved_addresses). Addresses that no host, VIP or next hop
        may use, such as a lab host's own address on each network.
      - A list; any type is taken, so that a wrong one is reported naming the variable.
    type: raw
    default: []
  openflow_ports:
    description: C(sdn_ha_openflow_ports). TCP ports the front VIP serves, a list.
    type: raw
    default: [6653]
  mode:
    description:
      - C(sdn_ha_mode). V(proxy) puts HAProxy (and the mirroring sidecar) on
        the front VIP; V(nat) forwards in the LBs' kernels with DNAT and
        conntrackd state sync, so an LB failover keeps the switches' sessions.
      - Checked here rather than by the option's C(choices), so that a wrong value is
        reported with the others, naming the variable.
    type: str
    default: proxy
  sync_segment:
    description:
      - C(sdn_ha_sync_segment). The segment on which conntrackd syncs in
        V(nat) mode; every load balancer needs an address on it.
    type: str
    default: sync
  fleet:
    description:
      - C(sdn_ha_switch_fleet). Switches that are not Ansible hosts, as real
        fleets have them. Faucet serves them and the LBs map them like the
        switches in the C(switches) group.
      - Each entry has a C(name) prefix, C(addresses) (a range C(A-B), a CIDR
        whose host addresses are taken, or a list), C(datapath_ids) (the
        first switch's datapath id, a quoted hex string), and optionally
        C(segment) (default O(switch_segment)) and C(ports) (Faucet
        interfaces, as C(sdn_ha_switch_ports)).
      - The n-th address (from 1) is switch C(NAME-n) with datapath id
        C(FIRST + n - 1). Every address must lie in the segment and belong to
        no one else; every datapath id must be unique.
      - A list; any type is taken, so that a wrong one is reported naming the variable.
    type: raw
    default: []
  switch_segment:
    description: C(sdn_ha_switch_segment). The segment the fleet's switches are on, unless an entry says otherwise.
    type: str
    default: switch
  tls:
    description:
      - C(sdn_ha_tls). The switches reach the front VIP over TLS, which the proxy-mode relay ends. It needs
        O(mode=proxy), O(mirror=true), O(tls_ca=true), and a certificate and key on every switch and LB
        (O(hosts[].tls)).
    type: bool
    default: false
  tls_ca:
    description: Whether C(sdn_ha_tls_ca), the CA certificate that signs the switches' and LBs' certificates, is given.
    type: bool
    default: false
  mirror:
    description: C(sdn_ha_mirror). Whether the mirror role runs its sidecar (in proxy mode, the relay that ends TLS).
    type: bool
    default: true
  vrrp_defaults:
    description:
      - The keepalived role's defaults of C(front_vrid), C(back_vrid) and C(priority), for the load balancers whose
        O(hosts[].vrrp) does not set them. The C(sdn_ha.control_plane.site) playbook reads them from the role.
    type: dict
    default: {front_vrid: 51, back_vrid: 52, priority: 100}
  hosts:
    description:
      - Per-host topology, one entry a host. Build it with the
        P(sdn_ha.control_plane.topology_hosts#filter) filter.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The inventory hostname.
        type: str
        required: true
      addresses:
        description:
          - C(sdn_ha_addresses). Segment name to C(address/prefix).
          - The interface is found by address on the host, so one inventory
            serves any interface naming.
          - A mapping; any type is taken, so that a wrong one is reported naming the host and the variable.
        type: raw
      routes:
        description:
          - C(sdn_ha_routes). Static routes, each C({to, via}). C(to) is a
            CIDR or C(default), never a subnet the host is on; C(via) must be on a connected subnet.
          - A list; any type is taken, so that a wrong one is reported naming the host and the variable.
        type: raw
      controller_role:
        description: C(sdn_ha_controller_role). C(master) or C(backup); exactly one master.
        type: str
      datapath_id:
        description: C(sdn_ha_datapath_id). The switch's datapath id, a quoted hex string.
        type: str
      groups:
        description: The host's groups (C(group_names)).
        type: list
        elements: str
      vrrp:
        description:
          - The VRRP values the inventory sets on a load balancer, as C(front_vrid), C(back_vrid), C(priority) and
            C(vrrp_segment) (C(keepalived_front_vrid), C(keepalived_back_vrid), C(keepalived_priority),
            C(keepalived_vrrp_segment)).
          - O(vrrp_defaults) fills the rest.
          - Ids must be 1-255 and differ between the two instances, priorities 1-254, and every load balancer must
            have the same id for each instance.
          - Every load balancer must send its adverts over the same segment, one it has an address on (by default
            the sync segment when it has an address there, else each VIP's own segment), or the two never hear each
            other and both hold the VIPs.
        type: dict
      shared:
        description:
          - The shared topology variables (C(sdn_ha_mode), C(sdn_ha_segments), the VIPs, the segment names,
            C(sdn_ha_reserved_addresses), C(sdn_ha_openflow_ports), C(sdn_ha_switch_fleet), C(sdn_ha_tls) and
            C(sdn_ha_mirror)) as this host sees them, for those that are set; long values as a digest.
          - Every host must see each of them alike. The most common value is taken as meant, and each host that
            differs (set in its host_vars or a group's vars only) is named.
        type: dict
      tls:
        description:
          - Which of C(sdn_ha_tls_cert) and C(sdn_ha_tls_key) the host has, as V(cert) and V(key); never their
            values, so that no key reaches the module's arguments.
        type: list
        elements: str
"""

EXAMPLES = r"""
- name: Validate the topology before anything changes
  sdn_ha.control_plane.validate_topology:
    segments: "{{ sdn_ha_segments }}"
    front_vip: "{{ sdn_ha_front_vip }}"
    back_vip: "{{ sdn_ha_back_vip }}"
    reserved_addresses: "{{ sdn_ha_reserved_addresses }}"
    hosts: "{{ hostvars | sdn_ha.control_plane.topology_hosts(groups['all']) }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
errors:
  description: Every problem found; empty when the topology is valid.
  returned: always
  type: list
  elements: str
  sample:
    - >-
      lb1: sdn_ha_addresses.transit = '198.18.5.11/24' is outside segment
      'transit' (198.18.2.0/24); use an address inside 198.18.2.0/24
hosts_checked:
  description: How many hosts were checked.
  returned: always
  type: int
  sample: 6
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.sdn_ha.control_plane.plugins.module_utils import topology


def main() -> None:
    host_spec = {
        "name": {"type": "str", "required": True},
        "addresses": {"type": "raw"},
        "routes": {"type": "raw"},
        "controller_role": {"type": "str"},
        "datapath_id": {"type": "str"},
        "groups": {"type": "list", "elements": "str"},
        "tls": {"type": "list", "elements": "str"},
        "vrrp": {"type": "dict"},
        "shared": {"type": "dict"},
    }
    module = AnsibleModule(
        argument_spec={
            "segments": {"type": "raw", "required": True},
            "front_vip": {"type": "str", "required": True},
            "back_vip": {"type": "str", "required": True},
            # The shared variables' defaults, as the roles take them (module_utils/topology.py).
            **{
                option: {"type": kind, "default": topology.SHARED_DEFAULTS[f"sdn_ha_{option}"]}
                for option, kind in (
                    ("front_segment", "str"),
                    ("back_segment", "str"),
                    ("controller_segment", "str"),
                    ("reserved_addresses", "raw"),
                    ("openflow_ports", "raw"),
                    ("mode", "str"),
                    ("sync_segment", "str"),
                    ("switch_segment", "str"),
                    ("tls", "bool"),
                    ("mirror", "bool"),
                )
            },
            "fleet": {"type": "raw", "default": topology.SHARED_DEFAULTS["sdn_ha_switch_fleet"]},
            "tls_ca": {"type": "bool", "default": False},
            "vrrp_defaults": {"type": "dict", "default": {"front_vrid": 51, "back_vrid": 52, "priority": 100}},
            "hosts": {"type": "list", "elements": "dict", "required": True, "options": host_spec},
        },
        supports_check_mode=True,
    )
    if topology.netaddr is None:
        module.fail_json(msg=missing_required_lib("netaddr"))

    p = module.params
    topo = topology.Topology(
        segments=p["segments"],
        front_vip=p["front_vip"],
        back_vip=p["back_vip"],
        hosts={h["name"]: h for h in p["hosts"]},
        front_segment=p["front_segment"],
        back_segment=p["back_segment"],
        controller_segment=p["controller_segment"],
        reserved_addresses=p["reserved_addresses"],
        openflow_ports=p["openflow_ports"],
        mode=p["mode"],
        sync_segment=p["sync_segment"],
        fleet=p["fleet"],
        switch_segment=p["switch_segment"],
        tls=p["tls"],
        tls_ca=p["tls_ca"],
        mirror=p["mirror"],
        vrrp_defaults=p["vrrp_defaults"],
    )
    errors = topology.validate(topo)
    result = {"changed": False, "errors": errors, "hosts_checked": len(topo.hosts)}
    if errors:
        module.fail_json(
            msg=f"Topology is invalid ({len(errors)} problem(s)):\n- " + "\n- ".join(errors),
            **result,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
