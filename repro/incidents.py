"""The registry of incidents: name, pytest marker, config schema.

Model: an incident is a folder `repro/<name>/` with a README (the story, the
fault, the oracle), `config.py` (its schema dataclass), a scenario and tests.
This table is what the plugin and the CLI know about it; schemas are imported
only when a configuration is checked.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from repro import config as cfg
from repro.errors import ConfigError


@dataclass(frozen=True)
class Incident:
    name: str
    marker: str
    schema_path: str  # "module:Class"
    summary: str

    def schema(self) -> type[Any]:
        module, attr = self.schema_path.split(":")
        schema: type[Any] = getattr(importlib.import_module(module), attr)
        return schema


INCIDENTS: dict[str, Incident] = {
    i.name: i
    for i in [
        Incident("mtu_wedge", "mtu", "repro.mtu_wedge.config:MtuWedgeConfig",
                 "hosts drop off the network under 20 concurrent ssh streams"),
        Incident("kernel_panic", "kernel_panic", "repro.kernel_panic.config:KernelPanicConfig",
                 "build servers panic under concurrent disk filling (LVM snapshot + resize2fs)"),
        Incident("mongo_index_lock", "mongo", "repro.mongo_index_lock.config:MongoIndexLockConfig", "a deploy storm re-declaring existing indexes stalls every writer"),  # noqa: E501
        Incident("slowclone", "slowclone", "repro.slowclone.config:SlowcloneConfig", "the build's checkout hangs for hours under heavy packet loss"),  # noqa: E501
        Incident("single_branch", "single_branch", "repro.single_branch.config:SingleBranchConfig", "shallow clones became --single-branch: non-master builds cannot reach their commit"),  # noqa: E501
    ]
}


def config_for(name: str, config: cfg.ConfigFile | None, profile: str = "ci") -> Any:
    incident = INCIDENTS[name]
    config = config or cfg.ConfigFile(path=None, tables={})
    return cfg.build(incident.schema(), config.tables.get(name, {}), incident=name,
                     config=config, profile=profile)


def validate_file(config: cfg.ConfigFile, profile: str = "ci") -> None:
    """Check every table of a user's file now, so errors surface before any host starts."""
    for table in config.tables:
        if table not in INCIDENTS:
            raise ConfigError(f"unknown incident table [{table}]; known: "
                              f"{', '.join(sorted(INCIDENTS))}", path=config.label)
        config_for(table, config, profile)
