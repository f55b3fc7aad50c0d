"""Table [backlog_drain] of the configuration under test (see this folder's README).

The CI defaults size one direction to under a minute on 2 cores: 20 jobs a second
arriving, 4 workers of 0.1 s jobs (about 36 a second), the replicas frozen 10 s (a
backlog of about 200 jobs, drained in about 12 s); `full` freezes them for a minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, cast

from repro.harness.config import FIXTURES


@dataclass(frozen=True)
class BacklogDrainConfig:
    # the check that declares the incident resolved: polled every second from the fault's
    # start with env DB_URL (the primary); exit 0 = resolved; a .py runs under the
    # harness's Python, anything else directly
    resolution: Path = cast(Path, "backlog_drain/fixed.py")  # noqa: RUF009
    arrival_rate: float = 20.0    # jobs enqueued per second (a steady producer)
    workers: int = 4              # workers taking jobs (SELECT ... FOR UPDATE SKIP LOCKED)
    job_s: float = 0.1            # each job's work (capacity: workers / job_s, above arrival)
    freeze_s: float = 10.0        # how long what the workers depend on (the replicas) is frozen
    grace_s: float = 15.0         # verdict: declared more than this after steady state fails
    hold_s: float = 3.0           # steady state: back in the band and staying this long
    depth_slack: float = 5.0      # steady band: baseline depth + this many jobs
    age_slack_s: float = 1.0      # steady band: baseline oldest age + this
    min_backlog: int = 20         # fewer queued at the worst: no backlog formed (inconclusive)
    baseline_s: float = 6.0       # queue running before the fault
    observe_max_s: float = 60.0   # after the heal, at most (until steady and declared)
    check_timeout_s: float = 5.0  # one run of the resolution check, at most

    PROFILES: ClassVar[dict[str, dict[str, object]]] = {
        "full": {"freeze_s": 60.0, "baseline_s": 15.0, "observe_max_s": 180.0,
                 "grace_s": 30.0},
    }

    def __post_init__(self) -> None:
        if isinstance(self.resolution, str):
            object.__setattr__(self, "resolution", (FIXTURES / self.resolution).resolve())

    @property
    def capacity(self) -> float:
        return self.workers / self.job_s

    def validate(self) -> None:
        positive = {"arrival_rate": self.arrival_rate, "job_s": self.job_s,
                    "freeze_s": self.freeze_s, "grace_s": self.grace_s, "hold_s": self.hold_s,
                    "baseline_s": self.baseline_s, "observe_max_s": self.observe_max_s,
                    "check_timeout_s": self.check_timeout_s}
        for key, value in positive.items():
            if value <= 0:
                raise ValueError(f"{key} must be positive")
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.capacity <= self.arrival_rate * 1.2:
            raise ValueError(f"workers / job_s ({self.capacity:g} jobs/s) must be above "
                             f"arrival_rate ({self.arrival_rate:g}) by 20 % or more: a queue "
                             "without spare capacity never drains")
        if min(self.depth_slack, self.age_slack_s) < 0 or self.min_backlog < 1:
            raise ValueError("slacks must not be negative, min_backlog at least 1")
