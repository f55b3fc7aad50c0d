"""Table [single_branch] of the configuration under test (see this folder's README)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar


@dataclass(frozen=True)
class SingleBranchConfig:
    checkout: Path = Path("single_branch/fixed.sh")  # the build's checkout step
    examples: int = 12            # repository shapes Hypothesis tries (before shrinking)
    seed: int = 20130401          # fixed: the same shapes, in the same order, every run
    step_timeout_s: float = 60.0  # one checkout may take this long
    transport: str = "http"       # "http" (smart HTTP) or "git" (git daemon)
    provider: str = "docker"

    PROFILES: ClassVar[dict[str, dict[str, object]]] = {
        "full": {"examples": 60},
    }

    def validate(self) -> None:
        if self.examples < 1:
            raise ValueError("examples must be at least 1")
        if self.step_timeout_s <= 0:
            raise ValueError("step_timeout_s must be positive")
        if self.transport not in ("http", "git"):
            raise ValueError('transport must be "http" or "git"')
