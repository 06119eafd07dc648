# Copyright: sdn_ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: os_vars
author: sdn_ha maintainers (@sdn-ha)
version_added: 0.1.0
short_description: The file of a role's OS data that fits the host
description:
  - Each role keeps what differs between operating systems (package names, paths, units) in its C(vars/) directory,
    one file per OS. This lookup returns the path of the file for the host's OS, the most specific first
    (C(Debian-12.yml), then C(Debian.yml), then the OS family's C(Debian.yml)), for M(ansible.builtin.include_vars).
  - It needs the host's facts (C(ansible_facts.distribution), C(distribution_major_version), C(os_family)).
  - When no file fits, it fails with a message that names the host, its OS, the role, and the operating systems the
    role has data for.
options:
  _terms:
    description: The role's path, usually C(role_path).
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Load OS data
  ansible.builtin.include_vars: "{{ lookup('sdn_ha.control_plane.os_vars', role_path) }}"
"""

RETURN = r"""
_raw:
  description: The path of the OS data file, one per term.
  type: list
  elements: path
"""

from pathlib import Path

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        variables = variables or {}
        facts = variables.get("ansible_facts") or {}
        host = variables.get("inventory_hostname", "this host")
        distribution = facts.get("distribution")
        if not distribution:
            raise AnsibleLookupError(f"{host}: no OS facts (ansible_facts.distribution); gather facts first")
        major = facts.get("distribution_major_version", "")
        names = [f"{distribution}-{major}.yml", f"{distribution}.yml", f"{facts.get('os_family')}.yml"]
        found = []
        for term in terms:
            vars_dir = Path(term) / "vars"
            path = next((vars_dir / name for name in names if (vars_dir / name).is_file()), None)
            if path is None:
                supported = sorted(p.stem for p in vars_dir.glob("*.yml") if p.name != "main.yml")
                raise AnsibleLookupError(
                    f"{host}: the {Path(term).name} role has no OS data for {distribution}"
                    f" {facts.get('distribution_version') or major}; it has OS data for"
                    f" {', '.join(supported) or 'none'}"
                )
            found.append(str(path))
        return found
