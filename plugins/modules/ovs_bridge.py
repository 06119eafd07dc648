#!/usr/bin/python
# Copyright: sdn_ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ovs_bridge
short_description: An Open vSwitch bridge connected to an OpenFlow controller
version_added: 0.1.0
description:
  - Makes one Open vSwitch bridge match its description, which covers the
    datapath type, fail mode, OpenFlow versions, datapath id, controller
    targets, controller timers and numbered ports.
  - Reads every setting first and changes only what differs, in one
    C(ovs-vsctl) transaction, so a second run reports no change.
  - Ports that are not listed are left alone.
requirements:
  - ovs-vsctl on the target
author:
  - sdn_ha maintainers (@sdn-ha)
extends_documentation_fragment:
  - sdn_ha.control_plane.attributes
  - sdn_ha.control_plane.attributes.debian_host
attributes:
  check_mode:
    support: full
  diff_mode:
    support: partial
    details:
      - The diff lists the C(ovs-vsctl) commands the module runs, or would run
        in check mode, as the after side; it does not show the bridge's
        settings before and after.
options:
  name:
    description: Bridge name.
    type: str
    required: true
  datapath_type:
    description: C(system) for the kernel datapath, C(netdev) for the userspace one.
    type: str
    default: system
  fail_mode:
    description: What the bridge does without a controller. C(secure) forwards nothing.
    type: str
    choices: [secure, standalone]
    default: secure
  protocols:
    description: OpenFlow versions the bridge speaks.
    type: list
    elements: str
    default: [OpenFlow13]
  datapath_id:
    description: Datapath id, as an integer string (C(0x1), C(1)).
    type: str
    required: true
  controllers:
    description: Controller targets, such as C(tcp:198.18.2.100:6653).
    type: list
    elements: str
    default: []
  max_backoff:
    description: Longest wait between reconnect attempts, in milliseconds.
    type: int
    default: 1000
  inactivity_probe:
    description: Idle time before the switch sends an echo request, in milliseconds.
    type: int
    default: 5000
  ports:
    description: Ports to attach, each C({name, number}); C(number) is the OpenFlow port number.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Interface name.
        type: str
        required: true
      number:
        description: OpenFlow port number (C(ofport_request)).
        type: int
        required: true
"""

EXAMPLES = r"""
- name: Connect br0 to the front VIP
  sdn_ha.control_plane.ovs_bridge:
    name: br0
    datapath_type: netdev
    datapath_id: "0x1"
    controllers: ["tcp:198.18.2.100:6653"]
    ports:
      - {name: p1, number: 1}
"""

RETURN = r"""
commands:
  description: The ovs-vsctl arguments that were (or, in check mode, would be) run.
  returned: always
  type: list
  elements: str
  sample: ["set Bridge br0 fail_mode=secure"]
"""

import re

from ansible.module_utils.basic import AnsibleModule


class Ovs:
    def __init__(self, module: AnsibleModule):
        self.module = module

    def run(self, *args: str, check: bool = True) -> tuple[int, str]:
        rc, out, err = self.module.run_command(["ovs-vsctl", "--timeout=10", *args])
        if check and rc != 0:
            self.module.fail_json(msg=f"ovs-vsctl {' '.join(args)} failed: {err.strip()}")
        return rc, out.strip()

    def get(self, table: str, record: str, column: str) -> str:
        rc, out = self.run("--if-exists", "get", table, record, column, check=False)
        return re.sub(r'["\s]', "", out) if rc == 0 else ""

    def lines(self, *args: str) -> list[str]:
        rc, out = self.run(*args, check=False)
        return out.splitlines() if rc == 0 and out else []


def bridge_changes(ovs: Ovs, p: dict, exists: bool) -> list[list[str]]:
    bridge = p["name"]
    dpid = f"{int(p['datapath_id'], 0):016x}"
    wanted = {
        "datapath_type": p["datapath_type"],
        "fail_mode": p["fail_mode"],
        "protocols": "[" + ",".join(p["protocols"]) + "]",
        "other_config:datapath-id": dpid,
    }
    values = {
        "datapath_type": p["datapath_type"],
        "fail_mode": p["fail_mode"],
        "protocols": ",".join(p["protocols"]),
        "other_config:datapath-id": dpid,
    }
    changes = [] if exists else [["--may-exist", "add-br", bridge]]
    for column, want in wanted.items():
        if not exists or ovs.get("Bridge", bridge, column) != want:
            changes.append(["set", "Bridge", bridge, f"{column}={values[column]}"])
    current = ovs.lines("get-controller", bridge) if exists else []
    if sorted(current) != sorted(p["controllers"]):
        changes.append(
            ["set-controller", bridge, *p["controllers"]] if p["controllers"] else ["del-controller", bridge]
        )
    ports = set(ovs.lines("list-ports", bridge)) if exists else set()
    for port in p["ports"]:
        if port["name"] not in ports:
            changes.append(["--may-exist", "add-port", bridge, port["name"]])
        if ovs.get("Interface", port["name"], "ofport_request") != str(port["number"]):
            changes.append(["set", "Interface", port["name"], f"ofport_request={port['number']}"])
    return changes


def controller_changes(ovs: Ovs, p: dict) -> list[list[str]]:
    changes = []
    for column in ("max_backoff", "inactivity_probe"):
        if ovs.get("Controller", p["name"], column) != str(p[column]):
            changes.append(["set", "Controller", p["name"], f"{column}={p[column]}"])
    return changes


def transaction(changes: list[list[str]]) -> list[str]:
    args: list[str] = []
    for change in changes:
        args += ["--", *change]
    return args


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "datapath_type": {"type": "str", "default": "system"},
            "fail_mode": {"type": "str", "default": "secure", "choices": ["secure", "standalone"]},
            "protocols": {"type": "list", "elements": "str", "default": ["OpenFlow13"]},
            "datapath_id": {"type": "str", "required": True},
            "controllers": {"type": "list", "elements": "str", "default": []},
            "max_backoff": {"type": "int", "default": 1000},
            "inactivity_probe": {"type": "int", "default": 5000},
            "ports": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "name": {"type": "str", "required": True},
                    "number": {"type": "int", "required": True},
                },
            },
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        int(p["datapath_id"], 0)
    except ValueError:
        module.fail_json(msg=f"datapath_id = {p['datapath_id']!r} is not an integer such as 0x1")
    ovs = Ovs(module)
    exists = ovs.run("br-exists", p["name"], check=False)[0] == 0

    changes = bridge_changes(ovs, p, exists)
    if changes and not module.check_mode:
        ovs.run(*transaction(changes))
    # Controller records exist only once set-controller has run.
    timer_changes = controller_changes(ovs, p) if p["controllers"] and (exists or not module.check_mode) else []
    if timer_changes and not module.check_mode:
        ovs.run(*transaction(timer_changes))
    commands = [" ".join(c) for c in changes + timer_changes]
    result = {"changed": bool(commands), "commands": commands}
    if module._diff and commands:
        result["diff"] = {"before": "", "after": "\n".join(commands) + "\n"}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
