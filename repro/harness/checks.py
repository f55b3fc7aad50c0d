"""Verdicts and the checker helpers shared by every incident.

Model (after Jepsen's checkers): a checker is a pure function
`check(events, params) -> Verdict`. A verdict is one of

  pass          the configuration survived the fault
  fail          the incident came back (reasons say where and when)
  inconclusive  nothing failed, but the fault did not take effect as asked (or the
                observer could not see): the run proves nothing
  unknown       the checker itself crashed; never counts as a pass

An observed failure outranks everything a checker found inconclusive: an
intermittent incident seen once is a failure, and only a run with no failure
observed may be run again (plugin.Session.judged, the gate).

`run_checker` wraps a checker so that a crash yields "unknown" with the error. A checker
is composed of named rules (repro.harness.rules); the primitives they share over probe samples
(liveness gaps, the observer's silence, reboots) are here.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise
from typing import Any, NamedTuple, TypeVar

from repro.harness.history import Event


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reasons: tuple[str, ...] = ()
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.PASS

    def describe(self) -> str:
        head = self.outcome.value.upper()
        return head + ("".join(f"\n  - {r}" for r in self.reasons) if self.reasons else "")

    @staticmethod
    def judge(failures: Sequence[str], inconclusive: Sequence[str],
              figures: dict[str, Any]) -> Verdict:
        """Fail wins over inconclusive: what was observed failing stays a failure, with the
        inconclusive reasons beside it; inconclusive only when nothing failed."""
        if failures:
            return Verdict(Outcome.FAIL, tuple(failures) + tuple(inconclusive), figures)
        if inconclusive:
            return Verdict(Outcome.INCONCLUSIVE, tuple(inconclusive), figures)
        return Verdict(Outcome.PASS, (), figures)


P = TypeVar("P")


def run_checker(checker: Callable[[list[Event], P], Verdict], events: list[Event],
                params: P) -> Verdict:
    try:
        return checker(events, params)
    except Exception as exc:  # a crashing checker must never pass
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return Verdict(Outcome.UNKNOWN, (f"checker crashed: {tb}",), {})


@dataclass(frozen=True)
class Gap:
    host: str
    start: float
    end: float
    ongoing: bool  # the host had not answered again when the history ended

    @property
    def length(self) -> float:
        return self.end - self.start


def liveness_gaps(samples: Iterable[Event], end: float | None = None, key: str = "ok"
                  ) -> list[Gap]:
    """Gaps between successful probe samples, per host.

    A sample is alive when its `key` field (default `ok`) is true. The gap runs from the last
    alive sample before a failure to the next alive sample (or to `end`, the
    end of observation, marked ongoing). A host never seen alive gives a gap
    from its first sample.
    """
    by_host: dict[str, list[Event]] = {}
    for s in samples:
        by_host.setdefault(s.host, []).append(s)
    gaps: list[Gap] = []
    for host, evs in by_host.items():
        evs.sort(key=lambda e: e.t)
        last_ok: float | None = None
        failing_since: float | None = None
        for e in evs:
            if e.get(key):
                if failing_since is not None:
                    gaps.append(Gap(host, last_ok if last_ok is not None else failing_since,
                                    e.t, False))
                    failing_since = None
                last_ok = e.t
            elif failing_since is None:
                failing_since = e.t
        if failing_since is not None:
            stop = end if end is not None else evs[-1].t
            gaps.append(Gap(host, last_ok if last_ok is not None else failing_since, stop, True))
    return gaps


def longest_silence(samples: Iterable[Event]) -> float:
    """Longest time between two consecutive samples: how long the observer itself was away."""
    ts = sorted(e.t for e in samples)
    return max((b - a for a, b in pairwise(ts)), default=0.0)


class Reboot(NamedTuple):
    """A change of boot id seen by a probe: the host booted again between two samples."""

    host: str
    t: float
    old: str  # boot id before
    new: str  # boot id after


def reboots(samples: Iterable[Event]) -> list[Reboot]:
    """(host, t, old boot id, new boot id) for every change of boot id seen by a probe."""
    seen: dict[str, str] = {}
    changes: list[Reboot] = []
    for e in sorted(samples, key=lambda e: e.t):
        boot = e.get("boot_id")
        if not boot:
            continue
        old = seen.get(e.host)
        if old is not None and old != boot:
            changes.append(Reboot(e.host, e.t, old, boot))
        seen[e.host] = boot
    return changes
