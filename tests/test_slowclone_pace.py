"""The slowclone server's pace: the repository it sizes and the hook that keeps it (no hosts)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from repro.slowclone.config import SlowcloneConfig
from repro.slowclone.pace import HOOK, Pace
from repro.slowclone.scenario import _repo_spec


def test_the_default_tree_outlasts_twice_the_budget_at_the_pace() -> None:
    pace = SlowcloneConfig().pace   # 32 KiB/s, budget 30 s, 16 MiB
    assert pace.commit_kib == 2880  # 32 KiB/s x 60 s x 1.5
    assert pace.master_commits == 5 and pace.tree_bytes == 16 * 1024 * 1024 // 5
    # 102 s at the pace even with no loss at all: past the cancel (10 s), the fixed step's
    # deadline (20 s) and the pre-fix's hang at twice the budget (60 s)
    assert pace.least_transfer_s == pytest.approx(102.4)
    spec = _repo_spec(pace)
    spec.validate()
    assert spec.master_commits == 5 and spec.size_kb == 16 * 1024


@pytest.mark.parametrize(("changes", "commits", "least_s"), [
    ({"repo_mb": 4.0}, 1, 128.0),                     # the QEMU variant
    ({"repo_mb": 64.0, "budget_s": 300.0}, 2, 1024.0),  # profile full
    ({"repo_mb": 1024.0}, 20, 1638.4),                # never more than 20 commits
])
def test_other_sizes_keep_the_tree_past_the_watch(changes: dict[str, float], commits: int,
                                                  least_s: float) -> None:
    cfg = SlowcloneConfig(**changes)  # type: ignore[arg-type]
    cfg.validate()
    assert cfg.pace.master_commits == commits
    assert cfg.pace.least_transfer_s == pytest.approx(least_s)
    assert cfg.pace.least_transfer_s >= 1.5 * 2 * cfg.budget_s
    _repo_spec(cfg.pace).validate()


def test_a_repository_too_small_for_the_pace_is_refused() -> None:
    with pytest.raises(ValueError, match="repo_mb must hold COMMIT's tree of 2880 KiB"):
        SlowcloneConfig(repo_mb=2.0).validate()
    with pytest.raises(ValueError, match="rate_kib_s"):
        SlowcloneConfig(rate_kib_s=0).validate()
    SlowcloneConfig(repo_mb=2.0, rate_kib_s=16.0).validate()  # half the pace, half the tree


def _hook(rate: int, *cmd: str) -> tuple[subprocess.CompletedProcess[bytes], float]:
    started = time.monotonic()
    res = subprocess.run([sys.executable, str(HOOK), str(rate), *cmd], capture_output=True,
                         timeout=30, check=False)
    return res, time.monotonic() - started


def test_the_hook_passes_the_pack_on_whole_and_no_faster_than_the_pace() -> None:
    size, rate = 256 * 1024, 1024 * 1024
    res, took = _hook(rate, sys.executable, "-c",
                      f"import sys; sys.stdout.buffer.write(bytes(range(256)) * {size // 256})")
    assert res.returncode == 0 and res.stdout == bytes(range(256)) * (size // 256)
    assert took >= size / rate  # no burst allowance: the last byte is due at size / rate


def test_the_hook_returns_pack_objects_exit_code() -> None:
    res, _ = _hook(1024, "sh", "-c", "exit 3")
    assert res.returncode == 3


def test_the_pace_model_is_a_pure_computation() -> None:
    assert Pace(64.0, 60.0, 8192).commit_kib == 5760 and Pace(64.0, 60.0, 8192).master_commits == 1


def test_the_qemu_variant_keeps_a_small_tree_past_the_watch() -> None:
    from repro.slowclone.test_slowclone import QEMU_CHANGES
    cfg = SlowcloneConfig(**QEMU_CHANGES)  # type: ignore[arg-type]
    cfg.validate()
    assert cfg.pace.master_commits == 5 and cfg.pace.tree_bytes == 4 * 1024 * 1024 // 5
    assert cfg.pace.least_transfer_s == pytest.approx(102.4)
