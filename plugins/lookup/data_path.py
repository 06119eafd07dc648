# Copyright: sdn_ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: data_path
author: sdn_ha maintainers (@sdn-ha)
version_added: 0.1.0
short_description: What carries the switches' sessions on a load balancer, decided once from the modes
description:
  - The one place where C(sdn_ha_mode), C(sdn_ha_tls) and C(sdn_ha_mirror) are turned into what runs on a load
    balancer. The haproxy, keepalived, nat and mirror roles and the playbooks take the modes from it and never decide
    them on their own.
  - It reads the three variables as the task that calls it sees them (inventory, play, role and extra vars alike). One
    that is unset takes the roles' default (proxy mode, no TLS, the mirror on).
  - Proxy mode puts HAProxy on the path. With TLS the mirror's relay ends it on the front VIP, in front of HAProxy;
    otherwise the mirror takes the kernel's copies of the sessions (the capture), off the path.
  - NAT mode forwards in the kernel, with the prober choosing a backup per switch, and the capture feeds the master.
options: {}
"""

EXAMPLES = r"""
# HAProxy runs in proxy mode only
haproxy_enabled: "{{ lookup('sdn_ha.control_plane.data_path').haproxy }}"
# With sdn_ha_mode: proxy and sdn_ha_tls: true
# => {"mode": "proxy", "haproxy": true, "nat": false, "mirror": true, "relay": true, "capture": false,
#     "gate": false, "view_sync": false, "prober": false,
#     "tracked": [{"name": "haproxy", "unit": "haproxy", "pgrep": "-x haproxy"},
#                 {"name": "sdn_ha_mirror", "unit": "sdn-ha-mirror", "pgrep": "-f [s]dn_ha_mirror.--listen"}],
#     "services": ["haproxy", "sdn-ha-mirror"],
#     "processes": {"haproxy": {...}, "sdn_ha_mirror": {...}, "nat_prober": {...}, "conntrackd": {...},
#                   "identity_gate": {"unit": "sdn-ha-identity", "pgrep": "-f [s]dn_ha_mirror.gate"}}}
"""

RETURN = r"""
_raw:
  description: The decisions, one dictionary.
  type: list
  elements: dict
  contains:
    mode:
      description: C(proxy) or C(nat).
      type: str
    haproxy:
      description: HAProxy carries the sessions (proxy mode).
      type: bool
    nat:
      description: The kernel's DNAT carries the sessions, with conntrackd (NAT mode).
      type: bool
    mirror:
      description: The mirror feeds the master.
      type: bool
    relay:
      description: The mirror's relay owns the front VIP and ends TLS (proxy mode with TLS and the mirror).
      type: bool
    capture:
      description: The mirror feeds the master from the kernel's copies, off the path.
      type: bool
    gate:
      description: The identity gate checks each session's datapath id on the way in (unless the relay does).
      type: bool
    view_sync:
      description: The active LB's capture sends each switch's view to the standby (NAT mode).
      type: bool
    prober:
      description: The OpenFlow prober assigns each switch a healthy backup (NAT mode).
      type: bool
    tracked:
      description: The processes whose death moves the VIPs away, each with C(name), C(unit) and C(pgrep) arguments.
      type: list
      elements: dict
    services:
      description: The systemd units a restart of the data path restarts, in order.
      type: list
      elements: str
    processes:
      description:
        - Every process that can be on a load balancer's path, in any mode, by name (C(haproxy), C(sdn_ha_mirror) for
          the relay, C(nat_prober), C(conntrackd), C(identity_gate)), each with its C(unit) and C(pgrep) arguments.
        - The C(pgrep) pattern cannot match a shell whose command line holds it, so it is safe in a C(shell) task.
      type: dict
"""

from ansible.plugins.lookup import LookupBase
from ansible_collections.sdn_ha.control_plane.plugins.plugin_utils.topology import DATA_PATH_VARS, data_path


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        variables = variables or {}
        given = {name: self._templar.template(variables[name]) for name in DATA_PATH_VARS if name in variables}
        return [data_path(given)]
