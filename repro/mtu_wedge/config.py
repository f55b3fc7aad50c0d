"""Table [mtu_wedge] of the configuration under test (see this folder's README)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar


@dataclass(frozen=True)
class MtuWedgeConfig:
    host_init: Path = Path("mtu_wedge/fixed.sh")  # run as root on every host once it is up
    streams: int = 20
    duration_s: float = 8.0
    max_gap_s: float = 2.0
    heartbeat_interval_s: float = 0.25
    provider: str = "docker"

    PROFILES: ClassVar[dict[str, dict[str, object]]] = {
        "full": {"duration_s": 60.0},
    }

    def validate(self) -> None:
        if self.streams < 1:
            raise ValueError("streams must be at least 1")
        if self.duration_s <= 0 or self.max_gap_s <= 0:
            raise ValueError("duration_s and max_gap_s must be positive")
        if not 0.05 <= self.heartbeat_interval_s <= self.max_gap_s:
            raise ValueError("heartbeat_interval_s must be between 0.05 and max_gap_s")
