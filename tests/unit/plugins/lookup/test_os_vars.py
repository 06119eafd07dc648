import pytest
from ansible.errors import AnsibleLookupError
from ansible_collections.sdn_ha.control_plane.plugins.lookup.os_vars import LookupModule


def facts(distribution, major, family, version=None):
    return {
        "inventory_hostname": "lb1",
        "ansible_facts": {
            "distribution": distribution,
            "distribution_major_version": major,
            "distribution_version": version or major,
            "os_family": family,
        },
    }


@pytest.fixture
def role(tmp_path):
    (tmp_path / "haproxy" / "vars").mkdir(parents=True)
    for name in ("main.yml", "Debian.yml", "Debian-13.yml"):
        (tmp_path / "haproxy" / "vars" / name).write_text("---\n")
    return str(tmp_path / "haproxy")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (facts("Debian", "13", "Debian"), "Debian-13.yml"),
        (facts("Debian", "12", "Debian"), "Debian.yml"),
        (facts("Ubuntu", "24", "Debian"), "Debian.yml"),  # the family's file
    ],
)
def test_the_most_specific_file_wins(role, given, expected):
    assert LookupModule().run([role], variables=given) == [f"{role}/vars/{expected}"]


def test_an_unsupported_os_names_the_host_the_os_the_role_and_what_is_supported(role):
    with pytest.raises(AnsibleLookupError) as caught:
        LookupModule().run([role], variables=facts("RedHat", "9", "RedHat", "9.4"))
    assert str(caught.value) == (
        "lb1: the haproxy role has no OS data for RedHat 9.4; it has OS data for Debian, Debian-13"
    )


def test_without_facts_it_says_so(role):
    with pytest.raises(AnsibleLookupError, match="lb1: no OS facts"):
        LookupModule().run([role], variables={"inventory_hostname": "lb1"})
