#!/usr/bin/python
# Copyright: sdn_ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: static_routes
short_description: Reconcile the kernel's static routes that this collection owns
version_added: 0.1.0
description:
  - Makes the IPv4 routes tagged with one route protocol number (C(proto))
    in the main table equal to O(routes). It adds or replaces missing and
    changed routes and deletes owned routes that are no longer listed.
  - Ownership is the protocol number, so routes added by anything else
    (DHCP, the kernel, an operator by hand) are never touched, unless a
    listed route takes over the same destination and metric.
  - This module changes the running kernel only. The router role persists
    the same list across reboot.
requirements:
  - iproute2 with JSON output (C(ip -j))
author:
  - sdn_ha maintainers (@sdn-ha)
extends_documentation_fragment:
  - sdn_ha.control_plane.attributes
  - sdn_ha.control_plane.attributes.debian_host
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
options:
  routes:
    description: The complete list of routes to own.
    type: list
    elements: dict
    default: []
    suboptions:
      to:
        description: Destination CIDR, or C(default).
        type: str
        required: true
      via:
        description: The next hop's address.
        type: str
        required: true
      metric:
        description: Route metric.
        type: int
        default: 0
  protocol:
    description: The route protocol number that marks routes as owned (1-255).
    type: int
    default: 222
"""

EXAMPLES = r"""
- name: Own exactly these routes
  sdn_ha.control_plane.static_routes:
    routes:
      - {to: 198.18.1.0/24, via: 198.18.2.2}
      - {to: default, via: 198.18.3.254}

- name: Remove every route this collection added
  sdn_ha.control_plane.static_routes:
    routes: []
"""

RETURN = r"""
added:
  description: Routes added or replaced, as C(to via metric).
  returned: always
  type: list
  elements: str
  sample: ["198.18.1.0/24 via 198.18.2.2 metric 0"]
removed:
  description: Owned routes deleted because they are no longer listed.
  returned: always
  type: list
  elements: str
  sample: []
"""

import ipaddress
import json

from ansible.module_utils.basic import AnsibleModule


def normalise(to: str) -> str:
    """One spelling per destination: 'default' and '0.0.0.0/0' are one route."""
    if to in ("default", "0.0.0.0/0"):
        return "default"
    return str(ipaddress.ip_network(to, strict=False))


def route_key(to: str, via: str, metric: int) -> tuple:
    return (normalise(to), str(ipaddress.ip_address(via)), int(metric))


def show(key: tuple) -> str:
    return f"{key[0]} via {key[1]} metric {key[2]}"


def owned_routes(module: AnsibleModule, protocol: int) -> set:
    _rc, out, _err = module.run_command(
        ["ip", "-j", "-4", "route", "show", "table", "main", "proto", str(protocol)], check_rc=True
    )
    current = set()
    for entry in json.loads(out or "[]"):
        if "gateway" in entry:
            current.add(route_key(entry["dst"], entry["gateway"], entry.get("metric", 0)))
    return current


def ip_route(module: AnsibleModule, verb: str, key: tuple, protocol: int) -> None:
    module.run_command(
        ["ip", "-4", "route", verb, key[0], "via", key[1], "metric", str(key[2]), "proto", str(protocol)],
        check_rc=True,
    )


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "routes": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "to": {"type": "str", "required": True},
                    "via": {"type": "str", "required": True},
                    "metric": {"type": "int", "default": 0},
                },
            },
            "protocol": {"type": "int", "default": 222},
        },
        supports_check_mode=True,
    )
    protocol = module.params["protocol"]
    if not 1 <= protocol <= 255:
        module.fail_json(msg=f"protocol = {protocol} must be between 1 and 255")
    try:
        desired = {route_key(r["to"], r["via"], r["metric"]) for r in module.params["routes"]}
    except ValueError as exc:
        module.fail_json(msg=f"routes: {exc}")

    before = owned_routes(module, protocol)
    to_add = sorted(desired - before)
    to_remove = sorted(before - desired)
    result = {
        "changed": bool(to_add or to_remove),
        "added": [show(k) for k in to_add],
        "removed": [show(k) for k in to_remove],
    }
    if module._diff:
        result["diff"] = {
            "before": "\n".join(show(k) for k in sorted(before)) + "\n",
            "after": "\n".join(show(k) for k in sorted(desired)) + "\n",
        }
    if module.check_mode or not result["changed"]:
        module.exit_json(**result)

    for key in to_add:
        ip_route(module, "replace", key, protocol)
    # A replace may already have taken over a stale route's destination.
    for key in sorted(owned_routes(module, protocol) - desired):
        ip_route(module, "del", key, protocol)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
