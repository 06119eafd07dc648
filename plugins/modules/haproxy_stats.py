#!/usr/bin/python
# Copyright: sdn_ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: haproxy_stats
short_description: Read HAProxy's view of its backends from the stats socket
version_added: 0.1.0
description:
  - Sends C(show stat) to HAProxy's stats socket and returns one entry per
    server, with its status, health check result and session counts.
  - Sends C(show sess) and returns one entry per client session, with the
    client's address and the server it was sent to, so a task can tell which
    backup controller carries a given switch.
  - Behind the mirror's relay (C(sdn_ha_tls)), every session's client is the
    relay on 127.0.0.1, not the switch.
  - A session on a server that counts no current session is left out, as
    HAProxy 3.0 still lists, for tens of seconds, a stream it shut down when
    its server was marked DOWN.
  - Read-only; it never changes HAProxy.
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
      - Any host that runs HAProxy with a stats socket; HAProxy 2.6 and 3.0 are tested.
options:
  socket:
    description: Path of HAProxy's stats socket.
    type: path
    default: /run/haproxy/admin.sock
  backend:
    description: Only report servers of this backend. All backends when unset.
    type: str
"""

EXAMPLES = r"""
- name: Read HAProxy's view of the controllers
  sdn_ha.control_plane.haproxy_stats:
    backend: controllers
  register: haproxy

- name: Both backups are UP
  ansible.builtin.assert:
    that: haproxy.servers | selectattr('status', 'eq', 'UP') | list | length == 2

- name: Name the backup that carries sw1's session
  ansible.builtin.debug:
    msg: "{{ haproxy.sessions | selectattr('source', 'eq', '198.18.1.10') | map(attribute='server') | first }}"
"""

RETURN = r"""
servers:
  description: One entry per server.
  returned: always
  type: list
  elements: dict
  sample:
    - backend: controllers
      server: ctl2
      address: 198.18.3.22:6653
      status: UP
      check_status: L7OK
      current_sessions: 1
      total_sessions: 3
sessions:
  description: One entry per client session that HAProxy has sent to a server (of O(backend), when set).
  returned: always
  type: list
  elements: dict
  sample:
    - source: 198.18.1.10
      source_port: 50076
      frontend: openflow
      backend: controllers
      server: ctl2
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sdn_ha.control_plane.plugins.module_utils.haproxy import (
    live_sessions,
    parse_servers,
    parse_sessions,
    query,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "socket": {"type": "path", "default": "/run/haproxy/admin.sock"},
            "backend": {"type": "str"},
        },
        supports_check_mode=True,
    )
    backend = module.params["backend"]
    try:
        stat = query(module.params["socket"], "show stat")
        sess = query(module.params["socket"], "show sess")
    except OSError as exc:
        module.fail_json(msg=f"socket = {module.params['socket']!r}: cannot read HAProxy stats: {exc}")
    servers = parse_servers(stat, backend)
    module.exit_json(changed=False, servers=servers, sessions=live_sessions(servers, parse_sessions(sess, backend)))


if __name__ == "__main__":
    main()
