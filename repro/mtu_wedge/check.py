"""The mtu_wedge oracle: a pure function of the history.

Pass when, for the target: the longest network gap (TCP connects to port 22
failing) is at most `max_gap_s`; ssh sessions never froze for longer than
SESSION_FREEZE_FACTOR x `max_gap_s` while the network answered, whenever that
was (before, during or after the flood); the flood as a whole never went
STALL_FACTOR x `max_gap_s` with none of its streams moving a byte, and no single
stream went SESSION_FREEZE_FACTOR x `max_gap_s` without one, while the network
answered (each stream's counter is sampled, all in one round: two samples with
the same count prove the stream made no progress in between; a frozen sshd stalls
every stream, while on a CPU-starved TCG guest one flow may wait a sampling
interval of 3-4 s as the others move); its boot id never changed; every stream
moved data after the go signal; and the flood lasted `duration_s`.

Both observers measure the host, not the flood, because the flood is scaled to
the backend (the scenario paces each stream on a TCG guest, whose CPU 20 unpaced
streams would take): a fixed host's sessions answer within the heartbeat's
timeout throughout, and a frozen one fails whether it froze at the logins or once
data flowed. The flood's counters lag the host by each stream's slack (an SSH
channel window of 2 MB, socket buffers, the pipe): milliseconds on Docker, where a
frozen sshd stands the flood still; longer than a 12 s freeze at a paced guest's
0.1-0.25 MB/s per stream, where the ssh leg judges such a freeze alone. A freeze
or a stall inside a network gap over the limit is that gap.

Inconclusive when the observer itself was starved for longer than `max_gap_s`
(no sample at all: a gap that long could have gone unseen), when the ssh leg was
silent for longer than the freeze limit, or when the flood did not reach its
target (fewer streams than asked, a stream that moved under 1 MiB, a flood cut
short) *and* the target stayed reachable, i.e. nothing but the harness explains
the shortfall; a flood cut short by the target vanishing is the incident, not a
harness failure. An observed failure is a failure, with those reasons beside it.

Composed (repro.harness.rules) of the figures, then the failure rules in the order of their
reasons: network gaps, session freezes, stream stalls, reboots; then the rule that says why
the run proves nothing (observer starved, streams short or idle, flood cut short), which the
target vanishing from the network excuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from repro.harness.checks import Gap, Reboot, Verdict, liveness_gaps, longest_silence
from repro.harness.history import Event, of_kind
from repro.harness.probes.heartbeat import leg
from repro.harness.rules import (
    Findings,
    Span,
    compose,
    fail,
    fault_events,
    fault_took_effect,
    gaps_over,
    inconclusive,
    merge,
    observer_starved,
    rebooted,
    stalls_over,
)

MIN_MOVED_BYTES = 1 << 20  # a stream that moved less than 1 MiB never carried bulk data
SESSION_FREEZE_FACTOR = 5
# The flood hangs when no stream moved for STALL_FACTOR x max_gap_s. On the fixed hosts some
# stream moved between every two sample rounds: 0.5-1.2 s apart on Docker, 2.3-4.1 s apart on
# paced TCG guests on a loaded runner (where one stream once stood still for 3.5 s, one round).
STALL_FACTOR = 2
# A stream is released once it moved more than a pipe's worth (its counter starts with the
# few bytes of its own pid file): seen on a loaded TCG guest, streams that logged in only
# after the go were never released and stayed at 4 bytes.
RELEASED_BYTES = 1 << 16
FAULT = "ssh_flood"


@dataclass(frozen=True)
class Params:
    target: str
    streams: int
    duration_s: float
    max_gap_s: float


@dataclass(frozen=True)
class Stall:
    """A stretch in which one stream's byte counter did not move: from the first sample that
    showed a count to the last sample that still showed it (a lower bound of the stall)."""

    stream: int
    start: float
    end: float

    @property
    def length(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Observed:
    """The target's heartbeat legs and the flood, as the rules below see them."""

    probes: list[Event]
    network: list[Event]  # TCP-connect leg
    sessions: list[Event]  # ssh-command leg
    began: float  # the flood's start
    ended: float  # the flood's stop (the last sample when it never stopped)
    end: float  # the end of observation
    gaps: list[Gap]  # of the network leg
    freezes: list[Gap]  # of the sessions leg
    streams_up: int
    moved: dict[int, int]  # bytes each stream moved after the go signal
    stalls: list[Stall]  # of every stream, while it was up and alive
    flood_stalls: list[Stall]  # stretches in which no released stream moved (stream 0)
    vanished: bool  # the target dropped off the network for longer than the limit

    def since(self, t: float) -> str:
        return f"{t - self.began:+.2f} s after the flood began"


def check(events: list[Event], p: Params) -> Verdict:
    probes = [e for e in of_kind(events, "probe") if e.host == p.target]
    if not leg(probes, "tcp") or not leg(probes, "ssh"):
        return compose(inconclusive(f"no heartbeat samples of {p.target}: nothing was observed"))
    started = fault_took_effect(events, FAULT, host=p.target,
                                never=f"the ssh flood against {p.target} never started")
    if started.inconclusive:
        return compose(started)
    o = observe(events, probes, p)
    return compose(_figures(o, p), _network_gaps(o, p), _session_freezes(o, p),
                   _stream_stalls(o, p), _reboots(o), _not_in_effect(o, p))


def observe(events: list[Event], probes: list[Event], p: Params) -> Observed:
    start = fault_events(events, "start", FAULT, p.target)[0]
    stops = fault_events(events, "stop", FAULT)
    ended = stops[-1].t if stops else probes[-1].t
    end = max(probes[-1].t, ended)
    network, sessions = leg(probes, "tcp"), leg(probes, "ssh")
    gaps = liveness_gaps(network, end=end)
    return Observed(probes, network, sessions, start.t, ended, end, gaps,
                    liveness_gaps(sessions, end=end),
                    int(start.get("measured", {}).get("streams_up", 0)),
                    _moved_per_stream(events, p.target), stream_stalls(events, p.target),
                    flood_stalls(events, p.target),
                    any(g.length > p.max_gap_s for g in gaps))


def _figures(o: Observed, p: Params) -> Findings:
    longest = max(o.gaps, key=lambda g: g.length, default=None)
    return Findings(figures={
        "longest_gap_s": round(longest.length, 3) if longest else 0.0,
        "gap_began_s": round(longest.start - o.began, 3) if longest else None,
        "streams_up": o.streams_up,
        "streams_asked": p.streams,
        "mb_moved": round(sum(o.moved.values()) / 1e6, 1),
        "flood_s": _flood_s(o),
        "longest_ssh_freeze_s": round(max((g.length for g in o.freezes), default=0.0), 3),
        "longest_stream_stall_s": round(max((s.length for s in o.stalls), default=0.0), 3),
        "longest_flood_stall_s": round(max((s.length for s in o.flood_stalls), default=0.0),
                                       3),
        "observer_silence_s": round(longest_silence(o.network), 3),
        "probes": len(o.probes),
        "tcp_failures": sum(1 for e in o.network if not e.get("ok")),
        "ssh_failures": sum(1 for e in o.sessions if not e.get("ok")),
    })


def _flood_s(o: Observed) -> float:
    return round(o.ended - o.began, 2)


def _network_gaps(o: Observed, p: Params) -> Findings:
    """The wedge: the target stopped answering TCP connects for longer than `max_gap_s`."""
    def say(g: Gap) -> str:
        state = "and had not come back when observation ended" if g.ongoing else ""
        return (f"{g.host} dropped off the network for {g.length:.2f} s (limit {p.max_gap_s} "
                f"s), from {o.since(g.start)} {state}").rstrip()
    return gaps_over(o.network, p.max_gap_s, end=o.end, say=say)


def _explained(o: Observed, p: Params) -> list[Gap]:
    """The network gaps over the limit: a freeze or a stall inside one is that gap."""
    return [g for g in o.gaps if g.length > p.max_gap_s]


def _session_freezes(o: Observed, p: Params) -> Findings:
    """ssh sessions frozen for SESSION_FREEZE_FACTOR x `max_gap_s` while TCP answered: at the
    logins, during the flood or after it (a freeze inside a network gap is that gap)."""
    limit = SESSION_FREEZE_FACTOR * p.max_gap_s

    def say(g: Gap) -> str:
        after = ("and had not answered again when observation ended" if g.ongoing else
                 f"until {o.since(g.end)}")
        return (f"{g.host} answered TCP but its ssh sessions froze for {g.length:.2f} s "
                f"(limit {limit:.0f} s), from {o.since(g.start)} {after}")
    return stalls_over(o.freezes, limit, explained=_explained(o, p), say=say)


def _unexplained(stalls: list[Stall], limit: float, explained: Sequence[Span]) -> list[Stall]:
    """The stalls over `limit` that no `explained` stretch overlaps."""
    return [s for s in stalls if s.length > limit
            and not any(s.start <= x.end and x.start <= s.end for x in explained)]


def _stream_stalls(o: Observed, p: Params) -> Findings:
    """The flood's own view of the host, while TCP answered: no stream moved for STALL_FACTOR
    x `max_gap_s` (a frozen sshd stalls them all), or one stream none for as long as a
    frozen session (SESSION_FREEZE_FACTOR x `max_gap_s`), said in one reason each."""
    explained = _explained(o, p)
    limit = STALL_FACTOR * p.max_gap_s
    whole = _unexplained(o.flood_stalls, limit, explained)
    found = fail(*(f"{p.target} answered TCP but none of its {len(o.moved)} ssh streams moved "
                   f"for {s.length:.2f} s (limit {limit:g} s), from {o.since(s.start)}"
                   for s in whole))
    one_limit = SESSION_FREEZE_FACTOR * p.max_gap_s
    over = _unexplained(o.stalls, one_limit, [*explained, *whole])
    if over:
        first = min(over, key=lambda s: s.start)
        shortest, longest = (f"{x:.2f}" for x in (min(s.length for s in over),
                                                  max(s.length for s in over)))
        span = f"{longest} s" if shortest == longest else f"{shortest}-{longest} s"
        found = merge(found, fail(
            f"{p.target} answered TCP but {len(over)} of its ssh streams "
            f"{sorted({s.stream for s in over})} moved no data for {span} (limit "
            f"{one_limit:g} s), the first from {o.since(first.start)}"))
    return found


def _reboots(o: Observed) -> Findings:
    def say(r: Reboot) -> str:
        return f"{r.host} rebooted at {o.since(r.t)} (boot id {r.old[:8]} -> {r.new[:8]})"
    return rebooted(o.sessions, say=say)


def _not_in_effect(o: Observed, p: Params) -> Findings:
    """Why the run proves nothing, unless the target vanished: a flood cut short by the
    target's collapse is the incident, not a harness failure."""
    if o.vanished:
        return Findings()
    found = merge(observer_starved(o.network, p.max_gap_s),
                  observer_starved(o.sessions, SESSION_FREEZE_FACTOR * p.max_gap_s,
                                   what="sample of its ssh session"))
    if o.streams_up < p.streams:
        found = merge(found, inconclusive(
            f"only {o.streams_up}/{p.streams} ssh streams ran against {p.target} while it "
            "stayed reachable: the flood did not take effect"))
    idle = sorted(i for i, b in o.moved.items() if b < MIN_MOVED_BYTES)
    if idle:
        found = merge(found, inconclusive(f"streams {idle} moved less than 1 MiB: the flood "
                                          "did not take effect"))
    if _flood_s(o) < p.duration_s - 0.5:
        found = merge(found, inconclusive(f"the flood lasted {_flood_s(o)} s, "
                                          f"not the {p.duration_s} s asked"))
    return found


def _moved_per_stream(events: list[Event], target: str) -> dict[int, int]:
    moved: dict[int, int] = {}
    for e in of_kind(events, "stream"):
        if e.host == target and e.get("up"):
            i = int(e.get("stream"))
            moved[i] = max(moved.get(i, 0), int(e.get("bytes", 0)) - int(e.get("bytes_at_go", 0)))
    return moved


def _released(events: list[Event], target: str) -> list[Event]:
    """The stream samples of `target` in which the stream was up, alive and released (moved
    more than RELEASED_BYTES past its count at the go)."""
    return [e for e in of_kind(events, "stream")
            if e.host == target and e.get("up") and e.get("alive", True)
            and int(e.get("bytes", 0)) - int(e.get("bytes_at_go", 0)) > RELEASED_BYTES]


def flood_stalls(events: list[Event], target: str) -> list[Stall]:
    """Stretches in which no released stream moved (stream 0): from the sample round that
    last showed a stream move (or become released) to the last round in which none had moved
    since. The streams of one round share its time (`SshFlood.sample`)."""
    rounds: dict[float, dict[int, int]] = {}
    for e in _released(events, target):
        rounds.setdefault(e.t, {})[int(e.get("stream"))] = int(e.get("bytes", 0))
    stalls: list[Stall] = []
    prev: dict[int, int] | None = None
    since = 0.0
    for t in sorted(rounds):
        cur = rounds[t]
        if prev is None or any(prev.get(i) != b for i, b in cur.items()):
            since = t
        elif stalls and stalls[-1].start == since:
            stalls[-1] = Stall(0, since, t)
        else:
            stalls.append(Stall(0, since, t))
        prev = cur
    return stalls


def stream_stalls(events: list[Event], target: str) -> list[Stall]:
    """Per stream, the stretches between the first and the last sample showing one byte
    count, over the samples in which the stream was up and alive, from its first sample
    RELEASED_BYTES past its count at the go (a stream never released never carried data:
    the flood did not take effect there, which `_not_in_effect` says); zero-length ones
    left out."""
    counts: dict[int, list[tuple[float, int]]] = {}
    for e in _released(events, target):
        counts.setdefault(int(e.get("stream")), []).append((e.t, int(e.get("bytes", 0))))
    stalls: list[Stall] = []
    for i, samples in counts.items():
        samples.sort()
        since, value = samples[0]
        for t, b in samples[1:]:
            if b != value:
                since, value = t, b
                continue
            if stalls and stalls[-1].stream == i and stalls[-1].start == since:
                stalls[-1] = Stall(i, since, t)
            else:
                stalls.append(Stall(i, since, t))
    return stalls
