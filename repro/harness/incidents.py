"""The registry of incidents: every IncidentSpec this installation can find.

Model: an incident declares itself once, as `SPEC` in its package's
`__init__.py` (repro.harness.spec). Discovery finds the incidents of this package
(its subpackages that define a SPEC) and those of any installed package that
registers one under the entry-point group `repro.incidents`, e.g. in a
team's pyproject.toml:

    [project.entry-points."repro.incidents"]
    cache_stampede = "ourteam_incidents.cache_stampede:SPEC"

`INCIDENTS` is that registry, filled on first use; nothing else lists
incidents. Configuration tables are checked here against each spec's schema.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator, Mapping
from importlib.metadata import entry_points
from typing import Any

from repro.harness import config as cfg
from repro.harness.errors import ConfigError, ReproError
from repro.harness.spec import IncidentSpec

ENTRY_POINT_GROUP = "repro.incidents"
NON_INCIDENT_TABLES = ("hosts",)  # tables of the configuration file that are not incidents


def _own_specs() -> Iterator[IncidentSpec]:
    import repro

    for module in pkgutil.iter_modules(repro.__path__):
        if module.ispkg and not module.name.startswith("_"):
            spec = getattr(importlib.import_module(f"repro.{module.name}"), "SPEC", None)
            if isinstance(spec, IncidentSpec):
                yield _placed(spec, f"repro.{module.name}")


def _registered_specs() -> Iterator[IncidentSpec]:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            spec = ep.load()
        except Exception as exc:  # a broken team package: say which, in one line
            raise ReproError(f"incident entry point {ep.name} = {ep.value} does not load: "
                             f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(spec, IncidentSpec):
            raise ReproError(f"incident entry point {ep.name} = {ep.value} is not an "
                             "IncidentSpec")
        yield _placed(spec, ep.value.partition(":")[0])


def _placed(spec: IncidentSpec, package: str) -> IncidentSpec:
    from dataclasses import replace

    return spec if spec.package else replace(spec, package=package)


class Registry(Mapping[str, IncidentSpec]):
    """name -> spec, discovered once; a name or marker declared twice is an error."""

    def __init__(self) -> None:
        self._specs: dict[str, IncidentSpec] | None = None

    def _load(self) -> dict[str, IncidentSpec]:
        if self._specs is None:
            found: dict[str, IncidentSpec] = {}
            markers: dict[str, str] = {}
            for spec in (*_own_specs(), *_registered_specs()):
                if spec.name in found and found[spec.name].package != spec.package:
                    raise ReproError(f"incident {spec.name} is declared twice: in "
                                     f"{found[spec.name].package} and {spec.package}")
                if markers.get(spec.marker, spec.name) != spec.name:
                    raise ReproError(f"marker {spec.marker} is used by both "
                                     f"{markers[spec.marker]} and {spec.name}")
                found[spec.name], markers[spec.marker] = spec, spec.name
            self._specs = dict(sorted(found.items()))
        return self._specs

    def __getitem__(self, name: str) -> IncidentSpec:
        return self._load()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


INCIDENTS = Registry()


def by_marker(marker: str) -> IncidentSpec | None:
    return next((s for s in INCIDENTS.values() if s.marker == marker), None)


def config_for(name: str, config: cfg.ConfigFile | None, profile: str = "ci") -> Any:
    spec = INCIDENTS[name]
    config = config or cfg.ConfigFile(path=None, tables={})
    return cfg.build(spec.schema, config.tables.get(name, {}), incident=name,
                     config=config, profile=profile)


def validate_file(config: cfg.ConfigFile, profile: str = "ci") -> None:
    """Check every table of a user's file now, so errors surface before any host starts
    (pytest's --repro-config and the CLI's --config both come here)."""
    for table in config.tables:
        if table in NON_INCIDENT_TABLES:
            _validate_other(table, config)
            continue
        if table not in INCIDENTS:
            raise ConfigError(f"unknown incident table [{table}]; known: "
                              f"{', '.join(sorted(INCIDENTS))}", path=config.label, key=table)
        config_for(table, config, profile)


def _validate_other(table: str, config: cfg.ConfigFile) -> None:
    """[hosts]: existing machines for the ssh backend, checked by that backend."""
    try:
        ssh = importlib.import_module("repro.harness.hosts.ssh")
    except ImportError:
        raise ConfigError("the [hosts] table needs the ssh backend, which this installation "
                          "lacks", path=config.label, key=table) from None
    validate = getattr(ssh, "validate_hosts_table", None)
    if validate is not None:
        validate(config.tables[table], config.label, config.base)
