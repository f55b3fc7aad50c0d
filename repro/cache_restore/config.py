"""Table [cache_restore] of the configuration under test (see this folder's README)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from repro.harness.hosts.base import parse_provider

CUTS = ("none", "half")
MAX_TARGETS = 40  # containers of one run (each a host with sshd); 13 start in ~3 s here


@dataclass(frozen=True)
class CacheRestoreConfig:
    restore: Path = Path("cache_restore/fixed.sh")  # run on the build host: CACHE, TARGETS, DEST
    targets: int = 12                  # containers the cache is restored into
    host_init: Path = Path("mtu_wedge/fixed.sh")  # run as root on every host once it is up
    cut: str = "half"                  # where one target's connection is cut: none, half
    budget_s: float = 60.0             # the restore may take this long
    cache_mb: float = 4.0              # the cache's size (incompressible, as build caches are)
    files: int = 120                   # files in the cache
    max_gap_s: float = 2.0             # longest tolerated silence of the build host
    heartbeat_interval_s: float = 0.25
    provider: str = "docker"

    PROFILES: ClassVar[dict[str, dict[str, object]]] = {
        "full": {"cache_mb": 64.0, "files": 1000, "budget_s": 300.0},
    }

    def validate(self) -> None:
        if not 1 <= self.targets <= MAX_TARGETS:
            raise ValueError(f"targets must be between 1 and {MAX_TARGETS}")
        if self.cut not in CUTS:
            raise ValueError(f"cut must be one of {', '.join(CUTS)}")
        if self.budget_s <= 0 or self.max_gap_s <= 0:
            raise ValueError("budget_s and max_gap_s must be positive")
        if not 0.5 <= self.cache_mb <= 512 or not 1 <= self.files <= 20000:
            raise ValueError("cache_mb must be between 0.5 and 512, files between 1 and 20000")
        if not 0.05 <= self.heartbeat_interval_s <= self.max_gap_s:
            raise ValueError("heartbeat_interval_s must be between 0.05 and max_gap_s")
        if parse_provider(self.provider)[0] != "docker":
            raise ValueError('provider must be "docker" (or docker:IMAGE): the targets are '
                             "containers of one run")
