"""The deploy storm with stand-in start-up commands (no database needed).

Instances carry the id of a live run (this test process owns it), so a `repro
cleanup` running meanwhile elsewhere on the machine spares them."""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from repro.harness.history import History
from repro.harness.run import Run, start_run
from repro.mongo_index_lock.storm import ENV_RUN, FAULT, Storm, StormPlan

RUN: Run | None = None


@pytest.fixture(scope="module", autouse=True)
def live_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    global RUN
    RUN = start_run(tmp_path_factory.mktemp("reports"))
    yield RUN
    RUN.close()
    RUN = None


def plan(code: str, instances: int = 6, waves: int = 3, timeout_s: float = 20.0,
         interval_s: float = 0.2) -> StormPlan:
    assert RUN is not None
    return StormPlan(command=[sys.executable, "-c", code], cwd=Path.cwd(),
                     env={**os.environ, "DB_URL": "postgresql://x", "DB_KIND": "postgresql"},
                     instances=instances, waves=waves, interval_s=interval_s,
                     timeout_s=timeout_s, run_id=RUN.run_id)


def test_waves_split_the_instances() -> None:
    assert plan("", instances=100, waves=5).wave_sizes() == [20] * 5
    assert plan("", instances=7, waves=3).wave_sizes() == [3, 2, 2]


def test_every_instance_runs_with_the_database_in_its_environment() -> None:
    h = History()
    code = (f"import os; print(os.environ['DB_URL'], os.environ['DB_KIND'], os.nice(0), "
            f"os.environ['{ENV_RUN}'])")
    result = Storm(plan(code), h).run(threading.Event())
    assert (result.started, result.succeeded, result.failed) == (6, 6, 0)
    exits = [e for e in h.events() if e.kind == "instance" and e.get("phase") == "exit"]
    assert len(exits) == 6
    assert RUN is not None
    assert all(e.get("output") == f"postgresql://x postgresql 19 {RUN.run_id}" for e in exits)
    assert sorted({e.get("wave") for e in exits}) == [1, 2, 3]
    kinds = [e.kind for e in h.events()]
    # the window through repro.harness.faults.base.injected, then what the storm achieved
    assert kinds[0] == "fault.start" and kinds[-2:] == ["fault.stop", "fault.measure"]
    measure = h.events()[-1]
    assert measure.get("fault") == FAULT and measure.get("succeeded") == 6


def test_waves_start_on_schedule() -> None:
    h = History()
    Storm(plan("pass", instances=3, waves=3, interval_s=0.5), h).run(threading.Event())
    waves = [e.t for e in h.events() if e.kind == "note" and e.get("wave")]
    assert [round(b - a, 1) for a, b in itertools.pairwise(waves)] == [0.5, 0.5]


def test_failing_and_hanging_instances_are_recorded_and_killed() -> None:
    h = History()
    code = ("import os, sys, time\n"
            "n = int(os.environ['REPRO_INSTANCE'])\n"
            "if n == 0: sys.exit(3)\n"
            "if n == 1: time.sleep(60)\n")
    begin = time.monotonic()
    result = Storm(plan(code, instances=3, waves=1, timeout_s=1.0), h).run(threading.Event())
    assert time.monotonic() - begin < 15
    assert (result.started, result.succeeded, result.failed, result.timed_out) == (3, 1, 2, 1)
    exits = {e.host: e for e in h.events() if e.kind == "instance" and e.get("phase") == "exit"}
    assert exits["instance0"].get("rc") == 3
    assert exits["instance1"].get("timed_out") is True


def test_a_command_that_cannot_start_counts_as_not_started() -> None:
    h = History()
    bad = StormPlan(command=["/nonexistent/repro-startup"], cwd=Path.cwd(), env=dict(os.environ),
                    instances=2, waves=1, interval_s=0, timeout_s=5, run_id="unused")
    result = Storm(bad, h).run(threading.Event())
    assert (result.started, result.failed) == (0, 2)
