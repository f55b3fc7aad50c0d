"""A run that starts while a reap is under way keeps its scratch dir (no Docker needed)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from repro.harness import cleanup
from repro.harness.run import Run, start_run


def test_a_run_started_during_a_reap_is_not_reaped(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[Run] = []

    def slow_backend_reap(all_runs: bool, live_run_ids: set[str]) -> list[str]:
        started.append(start_run(tmp_path / "reports"))  # starts after the reap began
        return []

    module = types.ModuleType("repro_test_slow_backend")
    module.reap = slow_backend_reap  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(cleanup, "REAPERS", [module.__name__])
    try:
        removed = cleanup.reap(all_runs=False)
        (run,) = started
        assert (run.scratch / "owner.pid").is_file(), removed
        assert not any(str(run.scratch) in r for r in removed)
    finally:
        for r in started:
            r.close()


def test_a_scratch_dir_never_appears_without_its_owner(tmp_path: Path) -> None:
    run = start_run(tmp_path / "reports")
    try:
        assert (run.scratch / "owner.pid").read_text().split()[1] == run.run_id
        assert not list(run.scratch.parent.glob(f".{run.scratch.name}-*"))  # no temp left
    finally:
        run.close()
