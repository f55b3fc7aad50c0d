"""Table [blackhole_replica] of the configuration under test (see this folder's README).

The CI defaults size one direction to about half a minute on 2 cores: 40 requests a
second, a replica frozen for 10 s; `full` freezes it for the postmortem's shorter
episode's order of magnitude (60 s here, the postmortem's were 10 and 42 minutes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, cast

from repro.harness.config import FIXTURES

FAULTS = ("freeze", "drop")


@dataclass(frozen=True)
class BlackholeReplicaConfig:
    # the calling service, run in the foreground with env PRIMARY_URL, REPLICA_URLS, PORT;
    # a .py runs under the harness's Python (psycopg installed), anything else directly
    caller: Path = cast(Path, "blackhole_replica/fixed.py")  # noqa: RUF009
    rate: float = 40.0              # requests per second to GET /jobs/<id>, open loop
    freeze_s: float = 10.0          # how long the replica stays frozen (or dropped)
    max_p99_ms: float = 500.0       # verdict: p99 latency of requests during the fault
    min_success: float = 0.99       # verdict: fraction of requests answered 200 during it
    fault: str = "freeze"           # "freeze" (kernel still acks) or "drop" (the blunt one)
    max_in_flight: int = 0          # verdict: requests outstanding at once (0: derived)
    max_health_gap_s: float = 2.0   # verdict: /health unanswered for longer than this
    max_recovery_s: float = 3.0     # verdict: back to the pre-fault band after the thaw
    hold_s: float = 3.0             # ... and staying there this long
    max_back_s: float = 3.0         # verdict: the thawed replica serves the caller's reads
                                    # again by then (its own counters: check.py)
    request_timeout_s: float = 5.0  # the load's own patience with one request
    baseline_s: float = 5.0         # load before the fault
    after_s: float = 7.0            # load after the thaw
    rows: int = 1000                # rows of repro_jobs the load asks for
    ready_timeout_s: float = 20.0   # the caller must answer /health and a read by then

    PROFILES: ClassVar[dict[str, dict[str, object]]] = {
        "full": {"freeze_s": 60.0, "baseline_s": 10.0, "after_s": 15.0, "rate": 80.0},
    }

    def __post_init__(self) -> None:
        if isinstance(self.caller, str):
            object.__setattr__(self, "caller", (FIXTURES / self.caller).resolve())

    @property
    def in_flight_limit(self) -> int:
        """max_in_flight, or twice what Little's law allows at the p99 limit, plus 10."""
        if self.max_in_flight:
            return self.max_in_flight
        return math.ceil(2 * self.rate * self.max_p99_ms / 1000) + 10

    def validate(self) -> None:
        if self.fault not in FAULTS:
            raise ValueError(f"fault must be one of {', '.join(FAULTS)}")
        if not 0 < self.min_success <= 1:
            raise ValueError("min_success must be a fraction in (0, 1]")
        positive = {"rate": self.rate, "freeze_s": self.freeze_s, "max_p99_ms": self.max_p99_ms,
                    "request_timeout_s": self.request_timeout_s, "baseline_s": self.baseline_s,
                    "after_s": self.after_s, "max_health_gap_s": self.max_health_gap_s,
                    "hold_s": self.hold_s, "ready_timeout_s": self.ready_timeout_s}
        for key, value in positive.items():
            if value <= 0:
                raise ValueError(f"{key} must be positive")
        if self.max_recovery_s < 0 or self.max_in_flight < 0:
            raise ValueError("max_recovery_s and max_in_flight must not be negative")
        if self.rows < 1:
            raise ValueError("rows must be at least 1")
        if self.after_s < max(self.max_recovery_s, self.max_back_s) + self.hold_s:
            raise ValueError("after_s must leave time to recover and hold "
                             "(at least max_recovery_s + hold_s and max_back_s + hold_s)")
        if self.max_back_s < 0:
            raise ValueError("max_back_s must not be negative")
