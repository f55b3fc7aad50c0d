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
    headline: tuple[str, ...] = ()  # the figures the report's table shows for it

    def schema(self) -> type[Any]:
        module, attr = self.schema_path.split(":")
        schema: type[Any] = getattr(importlib.import_module(module), attr)
        return schema


INCIDENTS: dict[str, Incident] = {
    i.name: i
    for i in [
        Incident("mtu_wedge", "mtu", "repro.mtu_wedge.config:MtuWedgeConfig",
                 "hosts drop off the network under 20 concurrent ssh streams",
                 ("longest_gap_s", "streams_up", "streams_asked", "mb_moved")),
        Incident("kernel_panic", "kernel_panic", "repro.kernel_panic.config:KernelPanicConfig",
                 "build servers panic under concurrent disk filling (LVM snapshot + resize2fs)",
                 ("kernel_findings", "reboots", "longest_gap_s", "fill_reached")),
        Incident("mongo_index_lock", "mongo",
                 "repro.mongo_index_lock.config:MongoIndexLockConfig",
                 "a deploy storm re-declaring existing indexes stalls every writer",
                 ("longest_stall_ms", "p99_ms", "max_lock_waiters", "instances_started")),
        Incident("slowclone", "slowclone", "repro.slowclone.config:SlowcloneConfig",
                 "the build's checkout hangs for hours under heavy packet loss",
                 ("loss_target", "under_loss_s", "under_loss_exit",
                  "longest_retransmission_gap_s")),
        Incident("single_branch", "single_branch",
                 "repro.single_branch.config:SingleBranchConfig",
                 "shallow clones became --single-branch: non-master builds cannot reach "
                 "their commit", ("shapes_failing", "shapes_tried")),
    ]
}


def config_for(name: str, config: cfg.ConfigFile | None, profile: str = "ci") -> Any:
    incident = INCIDENTS[name]
    config = config or cfg.ConfigFile(path=None, tables={})
    return cfg.build(incident.schema(), config.tables.get(name, {}), incident=name,
                     config=config, profile=profile)


def validate_file(config: cfg.ConfigFile, profile: str = "ci") -> None:
    """Check every table of a user's file now, so errors surface before any host starts
    (pytest's --repro-config and the CLI's --config both come here)."""
    for table in config.tables:
        if table not in INCIDENTS:
            raise ConfigError(f"unknown incident table [{table}]; known: "
                              f"{', '.join(sorted(INCIDENTS))}", path=config.label, key=table)
        config_for(table, config, profile)
