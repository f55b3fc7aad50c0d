"""Table [mongo_index_lock] of the configuration under test (see this folder's README).

The CI defaults size one direction to about a minute on 2 cores; the `full`
profile is the postmortem's scale (every index re-declared by 100 instances
per deploy, the default pool of 128 tickets, a longer storm and batch job).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, cast

from repro.harness.config import FIXTURES
from repro.harness.errors import ConfigError
from repro.harness.services.databases import kind_of


@dataclass(frozen=True)
class MongoIndexLockConfig:
    # the database: "postgresql" (embedded, the default here), "mongodb" (mongod from
    # PATH) or a postgresql:// / mongodb:// URI
    db: str = "postgresql"
    # the service's start-up, run once per instance with env DB_URL and DB_KIND; a path
    # relative to the TOML file; a .py file runs under the harness's Python
    # (a str default: repro.harness.config resolves string defaults against fixtures/)
    service_startup: Path = cast(Path, "mongo_index_lock/fixed.py")  # noqa: RUF009
    service_args: str = ""           # extra arguments (shell words) for service_startup
    instances: int = 100             # service instances started by the deploy
    waves: int = 5                   # the deploy starts instances in this many waves
    wave_interval_s: float = 6.0     # time between the starts of two waves
    instance_timeout_s: float = 60.0  # an instance still starting after this is killed
    workload_rate: float = 200.0     # operations per second, all clients together
    clients: int = 4                 # workload clients: half write, half read
    op_timeout_s: float = 30.0       # statement timeout of one workload operation
    batch_txn_s: float = 3.0         # the background write transaction's length (0: none)
    batch_gap_s: float = 1.0         # pause between two batch transactions
    baseline_s: float = 4.0          # workload alone before the storm
    settle_s: float = 6.0            # workload after the last instance started
    max_stall_ms: float = 1000.0     # verdict: longest stall of the workload
    p99_ms: float = 1000.0           # verdict: 99th percentile latency during/after the storm
    mongo_tickets: int = 8           # read and write tickets of a harness-started mongod

    PROFILES: ClassVar[dict[str, dict[str, object]]] = {
        "full": {"instances": 100, "waves": 10, "wave_interval_s": 10.0, "workload_rate": 400.0,
                 "clients": 8, "batch_txn_s": 10.0, "batch_gap_s": 2.0, "baseline_s": 10.0,
                 "settle_s": 20.0, "mongo_tickets": 128, "instance_timeout_s": 120.0},
    }

    def __post_init__(self) -> None:
        # built directly, not through repro.harness.config
        if isinstance(self.service_startup, str):
            object.__setattr__(self, "service_startup",
                               (FIXTURES / self.service_startup).resolve())

    @property
    def kind(self) -> str:
        return kind_of(self.db)

    def startup_command(self, python: str) -> list[str]:
        head = [python, str(self.service_startup)] if self.service_startup.suffix == ".py" \
            else [str(self.service_startup)]
        return head + shlex.split(self.service_args)

    def validate(self) -> None:
        try:
            kind_of(self.db)
        except ConfigError as exc:
            raise ValueError(str(exc)) from exc
        shlex.split(self.service_args)
        if self.instances < 1:
            raise ValueError("instances must be at least 1")
        if not 1 <= self.waves <= self.instances:
            raise ValueError("waves must be between 1 and instances")
        if self.clients < 2:
            raise ValueError("clients must be at least 2 (one writer, one reader)")
        positive = {"workload_rate": self.workload_rate, "max_stall_ms": self.max_stall_ms,
                    "p99_ms": self.p99_ms, "instance_timeout_s": self.instance_timeout_s,
                    "op_timeout_s": self.op_timeout_s}
        for key, value in positive.items():
            if value <= 0:
                raise ValueError(f"{key} must be positive")
        if min(self.wave_interval_s, self.batch_txn_s, self.batch_gap_s, self.baseline_s,
               self.settle_s) < 0:
            raise ValueError("durations must not be negative")
        if self.mongo_tickets < 1:
            raise ValueError("mongo_tickets must be at least 1")
