"""Table [leader_deadman] of the configuration under test (see this folder's README)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

FAULTS = ("kill", "pause", "partition")


@dataclass(frozen=True)
class LeaderDeadmanConfig:
    agent: Path = Path("leader_deadman/fixed.sh")  # every server's coordination agent (root)
    servers: int = 3
    decision_interval_s: float = 1.0   # DECISION_INTERVAL_S: how often the leader decides
    max_takeover_s: float = 10.0       # another server must decide this soon after the fault
    fault: str = "kill"                # what happens to the leader's host
    control_s: float = 6.0             # fault-free window: one decider, no leadership change
    after_s: float = 6.0               # after healing: still exactly one decider
    elect_timeout_s: float = 20.0      # the first decision must come this soon
    provider: str = "docker"

    PROFILES: ClassVar[dict[str, dict[str, object]]] = {
        "full": {"control_s": 60.0, "after_s": 30.0, "max_takeover_s": 30.0},
    }

    @property
    def fault_s(self) -> float:
        """How long the fault holds: long enough to see a takeover miss its limit."""
        return self.max_takeover_s + 3 * self.decision_interval_s

    def validate(self) -> None:
        if self.servers < 2:
            raise ValueError("servers must be at least 2 (someone must be able to take over)")
        if self.fault not in FAULTS:
            raise ValueError(f"fault must be one of {', '.join(FAULTS)}")
        if not 0.2 <= self.decision_interval_s <= self.max_takeover_s / 2:
            raise ValueError("decision_interval_s must be between 0.2 and max_takeover_s / 2")
        if self.control_s < 3 * self.decision_interval_s or \
                self.after_s < 3 * self.decision_interval_s:
            raise ValueError("control_s and after_s must each hold at least 3 decisions")
