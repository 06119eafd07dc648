"""The wheel the mirror role installs is built from these sources: same
version as the collection, the same modules, byte for byte."""

import tomllib
import zipfile
from pathlib import Path

import yaml

SIDECAR = Path(__file__).resolve().parents[1]
ROOT = SIDECAR.parent
REBUILD = "rebuild it: make sidecar-wheel"


def the_wheel() -> Path:
    wheels = sorted((ROOT / "roles/mirror/files").glob("sdn_ha_mirror-*.whl"))
    assert len(wheels) == 1, f"expected one sidecar wheel in roles/mirror/files, found {wheels}; {REBUILD}"
    return wheels[0]


def test_its_version_is_the_collections():
    version = tomllib.loads((SIDECAR / "pyproject.toml").read_text())["project"]["version"]
    assert version == yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    assert the_wheel().name == f"sdn_ha_mirror-{version}-py3-none-any.whl", REBUILD


def test_it_holds_exactly_the_sources():
    sources = {f"sdn_ha_mirror/{p.name}": p.read_bytes() for p in (SIDECAR / "sdn_ha_mirror").glob("*.py")}
    with zipfile.ZipFile(the_wheel()) as wheel:
        packed = {name: wheel.read(name) for name in wheel.namelist() if name.startswith("sdn_ha_mirror/")}
    assert sorted(packed) == sorted(sources), REBUILD
    stale = [name for name in sources if packed[name] != sources[name]]
    assert not stale, f"the wheel's {', '.join(stale)} differ from the sources; {REBUILD}"
