"""Table [kernel_panic] of the configuration under test (see this folder's README)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar


@dataclass(frozen=True)
class KernelPanicConfig:
    # run as root on the VM with DISK (an empty block device) and WORKSPACE (the mount
    # point it must leave mounted): the host's build-volume provisioning
    volume_setup: Path = Path("kernel_panic/fixed.sh")
    fillers: int = 8           # concurrent writers (the dummy-disk-filler builds)
    fill_to: float = 0.95      # used fraction of the workspace filesystem to reach
    rounds: int = 3            # provision + fill + check cycles on one VM
    disk_mb: int = 1024        # size of the empty disk handed to volume_setup
    heartbeat_interval_s: float = 1.0  # a miss threshold of 3 intervals (TCG stalls timers)
    provider: str = "qemu"     # hosts with their own kernel: a panic must not hit the runner

    PROFILES: ClassVar[dict[str, dict[str, object]]] = {
        "full": {"rounds": 10, "disk_mb": 4096, "fillers": 16},
    }

    def validate(self) -> None:
        if self.fillers < 1:
            raise ValueError("fillers must be at least 1")
        if not 0.1 <= self.fill_to <= 1.0:
            raise ValueError("fill_to must be between 0.1 and 1.0")
        if self.rounds < 1:
            raise ValueError("rounds must be at least 1")
        if self.disk_mb < 256:
            raise ValueError("disk_mb must be at least 256")
        if not 0.2 <= self.heartbeat_interval_s <= 10:
            raise ValueError("heartbeat_interval_s must be between 0.2 and 10")
        if self.provider != "qemu":
            raise ValueError("provider must be \"qemu\": the incident needs hosts with their "
                             "own kernel (Docker hosts share the runner's)")
