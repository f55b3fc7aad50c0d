"""Table [slowclone] of the configuration under test (see this folder's README)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from repro.slowclone.pace import MARGIN, Pace


@dataclass(frozen=True)
class SlowcloneConfig:
    checkout: Path = Path("slowclone/fixed.sh")  # the build's checkout step, run on the build host
    loss: float = 0.3             # packet loss between build host and git server, each way
    burst: float = 4.0            # mean packets lost in a row (Gilbert-Elliott); 1 = independent
    budget_s: float = 30.0        # the longest the step may run before it must give up by itself
    cancel_after_s: float = 10.0  # when the cancel run sends SIGTERM to the step's process group
    cancel_grace_s: float = 5.0   # by when the step and every git child must be gone
    repo_mb: float = 16.0         # size of the generated repository (random, incompressible)
    rate_kib_s: float = 32.0      # under loss the server passes each fetch on at most this fast
    transport: str = "http"       # "http" (smart HTTP) or "git" (git daemon)
    provider: str = "docker"

    PROFILES: ClassVar[dict[str, dict[str, object]]] = {
        "full": {"repo_mb": 64.0, "budget_s": 300.0},
    }

    @property
    def pace(self) -> Pace:
        """The server's pace under loss and the repository shape it needs (pace.py)."""
        return Pace(self.rate_kib_s, 2 * self.budget_s, int(self.repo_mb * 1024))

    def validate(self) -> None:
        if not 0.0 < self.loss < 1.0:
            raise ValueError("loss must be between 0 and 1 (0.3 is 30 %)")
        if self.burst < 1.0:
            raise ValueError("burst must be at least 1 (1 = independent losses)")
        if self.budget_s <= 0 or self.cancel_grace_s <= 0 or self.cancel_after_s < 0:
            raise ValueError("budget_s and cancel_grace_s must be positive, cancel_after_s >= 0")
        if self.cancel_after_s >= 2 * self.budget_s:
            raise ValueError("cancel_after_s must come before twice the budget")
        if self.repo_mb <= 0 or self.rate_kib_s <= 0:
            raise ValueError("repo_mb and rate_kib_s must be positive")
        if self.repo_mb * 1024 < self.pace.commit_kib:
            raise ValueError(f"repo_mb must hold COMMIT's tree of {self.pace.commit_kib} KiB "
                             f"(rate_kib_s x twice budget_s x {MARGIN:g}): at least "
                             f"{self.pace.commit_kib / 1024:.1f}")
        if self.transport not in ("http", "git"):
            raise ValueError('transport must be "http" or "git"')
