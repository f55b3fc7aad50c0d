"""Table [sunday_scheduler] of the configuration under test (see this folder's README)."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import ClassVar


@dataclass(frozen=True)
class SundaySchedulerConfig:
    scheduler: Path = Path("sunday_scheduler/fixed.sh")  # the heartbeat job, as scheduled
    period_s: float = 60.0       # PERIOD_S: one heartbeat a minute, as in the postmortem
    ttl_s: float = 0.0           # the dead man's switch; 0: 2.5 periods
    tz: str = "America/Los_Angeles"
    speed: float = 120.0         # host clock seconds per real second (libfaketime)
    start: str = ""              # local "YYYY-MM-DD HH:MM"; "": the Saturday before, 23:55
    after_midnight_s: float = 0.0  # how long each midnight is watched; 0: ttl + 2 periods
    examples: int = 4            # Hypothesis: start instants and zones tried (then shrinking)
    seed: int = 20131124         # fixed: the same instants, in the same order, every run
    provider: str = "docker"

    PROFILES: ClassVar[dict[str, dict[str, object]]] = {
        "full": {"speed": 30.0, "examples": 30},
    }

    @property
    def ttl(self) -> float:
        return self.ttl_s or 2.5 * self.period_s

    @property
    def after_midnight(self) -> float:
        return self.after_midnight_s or self.ttl + 2 * self.period_s

    def validate(self) -> None:
        if self.period_s <= 0 or self.speed <= 0:
            raise ValueError("period_s and speed must be positive")
        if self.ttl <= self.period_s:
            raise ValueError("ttl_s must be longer than period_s (a live server misses none)")
        if self.period_s / self.speed < 0.1:
            raise ValueError("period_s / speed must be at least 0.1 real seconds (a "
                             "heartbeat per tenth of a second is all a shell keeps up with)")
        try:
            zoneinfo.ZoneInfo(self.tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"tz: unknown time zone {self.tz!r}") from exc
        if self.start:
            try:
                datetime.strptime(self.start, "%Y-%m-%d %H:%M")
            except ValueError as exc:
                raise ValueError('start must be local "YYYY-MM-DD HH:MM"') from exc
        if self.examples < 0:
            raise ValueError("examples must be at least 0")
