from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.sdn_ha.control_plane.plugins.filter.unsupported_os import unsupported_os

ROOT = Path(__file__).resolve().parents[4]
DEBIAN = [{"name": "Debian", "versions": ["bookworm", "trixie"]}]


def facts(distribution, version, release):
    return {
        "distribution": distribution,
        "distribution_version": version,
        "distribution_major_version": version.split(".")[0],
        "distribution_release": release,
    }


@pytest.mark.parametrize(
    "host_facts",
    [facts("Debian", "12.12", "bookworm"), facts("Debian", "13.8", "trixie")],
    ids=["bookworm", "trixie"],
)
def test_both_debian_releases_pass(host_facts):
    assert unsupported_os(host_facts, {"router": DEBIAN, "switch": DEBIAN}, host="sw1") == []


def test_another_release_names_host_os_roles_and_what_they_support():
    messages = unsupported_os(facts("Debian", "11.11", "bullseye"), {"router": DEBIAN, "switch": DEBIAN}, host="sw2")
    assert messages == [
        "sw2: Debian 11.11 (bullseye) is not supported by the router, switch roles,"
        " which support Debian bookworm, trixie"
    ]


def test_another_distribution_is_refused():
    (message,) = unsupported_os(facts("RedHat", "9.4", "Plow"), {"router": DEBIAN}, host="ctl1")
    assert message == (
        "ctl1: RedHat 9.4 (Plow) is not supported by the router role, which supports Debian bookworm, trixie"
    )


def test_roles_with_different_platforms_get_a_message_each():
    platforms = {"router": [*DEBIAN, {"name": "Ubuntu", "versions": ["noble"]}], "nat": DEBIAN, "mirror": DEBIAN}
    assert unsupported_os(facts("Ubuntu", "24.04", "noble"), platforms, host="lb1") == [
        "lb1: Ubuntu 24.04 (noble) is not supported by the nat, mirror roles, which support Debian bookworm, trixie"
    ]


def test_major_version_and_all_match():
    assert unsupported_os(facts("Rocky", "9.4", "Blue Onyx"), {"r": [{"name": "Rocky", "versions": [9]}]}) == []
    assert unsupported_os(facts("Debian", "14", "forky"), {"r": [{"name": "Debian", "versions": ["all"]}]}) == []


def test_unknown_release_is_left_out_of_the_name():
    (message,) = unsupported_os(facts("Debian", "14", "n/a"), {"router": DEBIAN}, host="x")
    assert message.startswith("x: Debian 14 is not supported")


def test_without_facts_it_says_to_gather_them():
    with pytest.raises(AnsibleFilterError, match="lb1: no OS facts"):
        unsupported_os({}, {"router": DEBIAN}, host="lb1")


def test_every_role_declares_both_debian_releases():
    for role in sorted((ROOT / "roles").iterdir()):
        info = yaml.safe_load((role / "meta" / "main.yml").read_text())["galaxy_info"]
        assert info["platforms"] == DEBIAN, role.name
        assert info["description"], role.name
        assert unsupported_os(facts("Debian", "13.8", "trixie"), {role.name: info["platforms"]}) == []
