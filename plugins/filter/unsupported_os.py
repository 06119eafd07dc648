# Copyright: sdn_ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def _os_name(facts: dict) -> str:
    distribution = facts.get("distribution") or "an unknown OS"
    version = facts.get("distribution_version") or facts.get("distribution_major_version") or ""
    release = facts.get("distribution_release") or ""
    known_release = release and release.lower() not in ("n/a", "na")
    return " ".join(part for part in (distribution, version, f"({release})" if known_release else "") if part)


def _supports(platforms: list, facts: dict) -> bool:
    """Galaxy's platform entries: a name, and versions by release name, by
    major version, or `all`."""
    distribution = facts.get("distribution")
    accepted = {"all", str(facts.get("distribution_release", "")).lower(), str(facts.get("distribution_major_version"))}
    return any(
        entry.get("name") == distribution and accepted & {str(v).lower() for v in entry.get("versions", [])}
        for entry in platforms
    )


def _listing(platforms: list) -> str:
    return "; ".join(f"{entry.get('name')} {', '.join(map(str, entry.get('versions', [])))}" for entry in platforms)


def unsupported_os(facts: dict, platforms: dict, host: str = "this host") -> list[str]:
    """One message per group of this host's roles that do not support its
    OS (roles with the same platforms share one); empty when all do."""
    if not isinstance(facts, dict) or not facts.get("distribution"):
        raise AnsibleFilterError(f"{host}: no OS facts (ansible_facts.distribution); gather facts first")
    groups: dict[str, list[str]] = {}
    for role, role_platforms in platforms.items():
        if not _supports(role_platforms or [], facts):
            groups.setdefault(_listing(role_platforms or []) or "no platform", []).append(role)
    return [
        f"{host}: {_os_name(facts)} is not supported by the {', '.join(roles)} role{'s' if len(roles) > 1 else ''},"
        f" which support{'' if len(roles) > 1 else 's'} {listing}"
        for listing, roles in groups.items()
    ]


class FilterModule:
    def filters(self):
        return {"unsupported_os": unsupported_os}
