"""disk_fill's wait on a scripted host: when the fill gives up on its own polls.

The fill's `host_lost` is its own view (its ssh polls went unanswered); it must take
LOST_POLLS failed polls in a row, not two slow ones, and record how many failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from repro.harness.faults import disk_fill
from repro.harness.faults.disk_fill import DiskFill
from repro.harness.hosts.base import CommandResult

PROGRESS_OK = "1000 900 4096\n8\n"  # blocks, free, block size; 8 writers running
DONE = "1000 40 4096\n0\n1 target\n"


@dataclass
class ScriptedHost:
    """Answers each progress poll from `answers` (None: the poll timed out)."""

    answers: list[str | None]
    name: str = "repro-ab12-kp"
    role: str = "kp"
    address: str = "127.0.0.1"
    polls: int = field(default=0, init=False)

    def run(self, command: str, *, timeout: float, check: bool = True,
            env: Mapping[str, str] | None = None, stdin: bytes | None = None) -> CommandResult:
        out = self.answers[min(self.polls, len(self.answers) - 1)]
        self.polls += 1
        return CommandResult(self.name, command, None if out is None else 0, out or "", "",
                             0.0)


@pytest.fixture(autouse=True)
def _no_poll_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(disk_fill, "POLL_S", 0.0)


def fill(host: ScriptedHost) -> DiskFill:
    f = DiskFill(host, "/srv/w", timeout_s=30.0)  # type: ignore[arg-type]
    f._started = disk_fill.time.monotonic()
    return f


def test_two_unanswered_polls_do_not_mark_the_host_lost():
    host = ScriptedHost([PROGRESS_OK, None, None, PROGRESS_OK, DONE])
    m = fill(host).wait(lost_after_s=0.0)
    assert not m.host_lost and m.running == 0 and m.fraction == 0.96
    assert host.polls == 5


def test_lost_polls_in_a_row_mark_the_host_lost_and_say_how_many():
    host = ScriptedHost([PROGRESS_OK, None])
    m = fill(host).wait(lost_after_s=0.0)
    assert m.host_lost and m.failed_polls == disk_fill.LOST_POLLS
    assert m.fraction == 0.1  # the last level measured, kept for the checker
    assert "short of 95%" in DiskFill.shortfall(m, 0.95)


def test_an_observer_saying_the_host_died_ends_the_wait_at_once():
    host = ScriptedHost([PROGRESS_OK])
    m = fill(host).wait(host_dead=lambda: True)
    assert m.host_lost and host.polls == 0
