"""Every registered incident is complete: spec, tables, fixtures, README, docs row.

Runs over whatever the registry finds (this package's incidents and any a team
registered under the `repro.incidents` entry-point group), so a new incident
is checked the moment it declares its SPEC.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from repro.harness import config as cfgfile
from repro.harness import incidents
from repro.harness.spec import IncidentSpec

ROOT = Path(__file__).resolve().parent.parent
SPECS = list(incidents.INCIDENTS.values())


def _table(root: Path, file: str, name: str) -> dict[str, object]:
    data = tomllib.loads((root / file).read_text())
    assert name in data, f"fixtures/{file} has no [{name}] table"
    table: dict[str, object] = data[name]
    return table


def test_the_five_landed_incidents_are_registered() -> None:
    markers = {s.name: s.marker for s in SPECS}
    assert {"mtu_wedge": "mtu", "kernel_panic": "kernel_panic", "slowclone": "slowclone",
            "single_branch": "single_branch", "mongo_index_lock": "mongo"}.items() \
        <= markers.items()


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_spec_is_complete(spec: IncidentSpec) -> None:
    assert spec.problems() == []
    assert spec.folder is not None and (spec.folder / "README.md").is_file()
    assert list(spec.folder.glob("test_*.py")), "no test module in the incident's folder"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_default_and_prefix_tables_exist_and_load(spec: IncidentSpec) -> None:
    root = cfgfile.fixtures_root(spec.schema)  # the harness's, or a team package's own
    _table(root, "default.toml", spec.name)
    prefix = _table(root, "prefix.toml", spec.name)
    assert prefix.get(spec.prefix.key) == spec.prefix.fixture, (
        f"fixtures/prefix.toml [{spec.name}] {spec.prefix.key} is not the spec's pre-fix "
        f"fixture {spec.prefix.fixture}")
    assert (root / spec.prefix.fixture).is_file()
    for file in ("default.toml", "prefix.toml"):
        incidents.validate_file(cfgfile.read_file(root / file))


@pytest.mark.parametrize("spec", [s for s in SPECS if s.package.startswith("repro.")],
                         ids=lambda s: s.name)
def test_readme_table_has_a_row_for_it(spec: IncidentSpec) -> None:
    """This package's incidents (a team's are in its own README): `repro new` adds the row."""
    readme = (ROOT / "README.md").read_text()
    assert f"| [{spec.name}](repro/{spec.name}/README.md) | `{spec.marker}` |" in readme


def test_a_registered_entry_point_incident_is_discovered(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    from importlib.metadata import EntryPoint

    ep = EntryPoint("extra", "repro.mtu_wedge:SPEC", incidents.ENTRY_POINT_GROUP)
    monkeypatch.setattr(incidents, "entry_points", lambda group: [ep])
    registry = incidents.Registry()
    assert registry["mtu_wedge"].package == "repro.mtu_wedge"  # the same spec, once


def test_a_marker_declared_by_two_incidents_is_an_error(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    import dataclasses

    from repro.harness.errors import ReproError

    clash = dataclasses.replace(incidents.INCIDENTS["mtu_wedge"], name="other", package="x")
    monkeypatch.setattr(incidents, "_registered_specs", lambda: iter([clash]))
    with pytest.raises(ReproError, match="marker mtu is used by both"):
        len(incidents.Registry())
