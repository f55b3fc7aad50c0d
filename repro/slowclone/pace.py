"""The git server's pace under loss: no fetch of COMMIT can end before the cancel or the budget.

Model. Under loss the server passes every pack on at no more than `rate` bytes/s
(pace_hook.py, installed as git's system-wide `uploadpack.packObjectsHook`, so
smart HTTP and git:// both go through it; a pace of the application, not a queue
that drops: the loss stays the postmortem's model alone). COMMIT's tree holds one
blob of `commit_kib` KiB of random, incompressible bytes, which any step that
checks out COMMIT must receive, so none can before `commit_kib / rate` seconds,
even if the random loss spared every packet. `commit_kib` is sized to outlast the
whole watch (twice the budget, the cancel long before it) by `MARGIN`.

The baseline runs before the pace is set: without loss the step runs at the
link's own speed.
"""

from __future__ import annotations

import contextlib
import math
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the schema imports this module: keep it cheap to import
    from repro.harness.hosts.base import Host
    from repro.harness.run import Run

HOOK = Path(__file__).resolve().parent / "pace_hook.py"
MARGIN = 1.5          # the tree lasts 1.5x the watch: room for a slow poll of a loaded host
MAX_COMMITS = 20      # master's commits when the repository is big enough for that many
CMD_TIMEOUT_S = 60.0  # generous: a TCG guest on a busy machine stalls for tens of seconds


@dataclass(frozen=True)
class Pace:
    """The pace and the repository shape it needs."""

    rate_kib_s: float   # the most the server passes on per fetch, KiB/s
    watch_s: float      # how long a step must still be transferring (twice the budget)
    repo_kib: int       # the repository's total size

    @property
    def commit_kib(self) -> int:
        """The least COMMIT's tree must weigh so that its transfer outlasts the watch."""
        return math.ceil(self.rate_kib_s * self.watch_s * MARGIN)

    @property
    def master_commits(self) -> int:
        """As many commits as the size allows, each rewriting a blob of at least commit_kib."""
        return max(1, min(MAX_COMMITS, self.repo_kib // self.commit_kib))

    @property
    def tree_bytes(self) -> int:
        """The bytes of COMMIT's bulk blob (gitgen: an equal share of the size per commit)."""
        return self.repo_kib * 1024 // self.master_commits

    @property
    def least_transfer_s(self) -> float:
        """The soonest any step can have COMMIT's tree at this pace."""
        return self.tree_bytes / (self.rate_kib_s * 1024)


@contextlib.contextmanager
def paced(server: Host, run: Run, pace: Pace) -> Iterator[None]:
    """The server's packs at `pace` inside the block; git's default again after it."""
    hook = f"/tmp/{run.name('pace-hook.py')}"
    server.put(HOOK.read_bytes(), hook, 0o755)
    value = f"python3 {hook} {round(pace.rate_kib_s * 1024)}"
    try:
        server.run(f"git config --system uploadpack.packObjectsHook {shlex.quote(value)}",
                   timeout=CMD_TIMEOUT_S)
        yield
    finally:
        server.run(f"git config --system --unset-all uploadpack.packObjectsHook; rm -f {hook}",
                   timeout=CMD_TIMEOUT_S, check=False)
