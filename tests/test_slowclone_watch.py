"""slowclone's watch of the runs under loss, on stand-in steps (no hosts): each run on a thread
of its own, so one slow host never delays another run's cancel."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import pytest

from repro.harness.history import History
from repro.harness.workloads.checkout import CancelOutcome, StepStatus
from repro.slowclone.config import SlowcloneConfig
from repro.slowclone.scenario import _follow_all, _Watch


@dataclass
class StandIn:
    """A step: `start` takes `start_s` (a loaded guest), ends by itself `ends_s` after it."""

    name: str
    start_s: float = 0.0
    ends_s: float | None = None
    fails: bool = False
    t0: float = 0.0
    cancelled_at: float | None = None
    host: Any = field(default=None)

    def __post_init__(self) -> None:
        self.host = SimpleNamespace(name=self.name)

    def start(self) -> None:
        time.sleep(self.start_s)  # stands in for the ssh calls of a start
        if self.fails:
            raise RuntimeError(f"{self.name}: start failed")
        self.t0 = time.monotonic()

    def _ended(self) -> bool:
        return self.cancelled_at is not None or (
            self.ends_s is not None and time.monotonic() - self.t0 >= self.ends_s)

    def status(self) -> StepStatus:
        ended = self._ended()
        return StepStatus(ended, 124 if ended else None,
                          round(time.monotonic() - self.t0, 3) if ended else None, ())

    def cancel(self, watch_s: float) -> CancelOutcome:
        self.cancelled_at = time.monotonic() - self.t0
        return CancelOutcome(0.01, ())

    def head(self) -> str:
        return ""

    def output(self) -> str:
        return ""


def watch(step: StandIn, run: str, cancel_at: float | None = None,
          hang_at: float | None = None) -> _Watch:
    item = SimpleNamespace(history=History(), cfg=SlowcloneConfig(cancel_grace_s=0.1))
    return _Watch(cast(Any, item), cast(Any, step), run, 0.0, cancel_at, hang_at)


def ops(w: _Watch) -> list[tuple[str, str]]:
    return [(e.get("name"), e.get("phase")) for e in w.item.history.events()]


def test_a_slow_start_elsewhere_does_not_delay_a_cancel() -> None:
    slow = StandIn("build1", start_s=1.0, ends_s=0.2)
    quick = StandIn("build2")
    watches = [watch(slow, "budget", hang_at=5.0), watch(quick, "cancel", cancel_at=0.3)]
    _follow_all(watches)
    # sent 0.3 s after its own start, not after the other host's 1 s start
    assert quick.cancelled_at is not None and quick.cancelled_at < 0.9
    assert ops(watches[1]) == [("checkout", "start"), ("cancel", "sent"), ("cancel", "done")]
    assert ops(watches[0]) == [("checkout", "start"), ("checkout", "exit")]


def test_a_run_that_ended_before_its_cancel_is_seen_ended_and_never_cancelled() -> None:
    early = StandIn("build", ends_s=0.1)
    w = watch(early, "cancel", cancel_at=0.3)
    _follow_all([w])
    assert early.cancelled_at is None and ops(w)[-1] == ("checkout", "exit")


def test_a_failed_start_stops_the_other_watches() -> None:
    started = time.monotonic()
    watches = [watch(StandIn("build1", fails=True, start_s=0.2), "cancel", cancel_at=0.3),
               watch(StandIn("build2"), "budget", hang_at=30.0)]
    with pytest.raises(RuntimeError, match="start failed"):
        _follow_all(watches)
    assert time.monotonic() - started < 5.0  # not the other run's 30 s
