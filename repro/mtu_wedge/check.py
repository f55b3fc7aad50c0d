"""The mtu_wedge oracle: a pure function of the history.

Pass when, for the target: the longest network gap (TCP connects to port 22
failing) is at most `max_gap_s`, ssh sessions never froze for longer than
SESSION_FREEZE_FACTOR x `max_gap_s` while the network answered *and stayed
frozen past the flood* (the heartbeat's ssh leg shares sshd with the flood, so
during the flood it measures the flood: a loaded sshd is slow, not gone; once
the flood is healed, sessions still frozen RECOVERY_S later are a host that is
gone; a freeze still open when observation ended too soon to tell is
inconclusive), its boot id never changed, every stream moved data
after the go signal, and the flood lasted `duration_s`. When the observer
itself was starved for longer than `max_gap_s` (no sample at all), a gap that
long could have gone unseen: inconclusive; so is an ssh leg silent for longer
than the freeze limit. Inconclusive when the flood did not reach its
target (fewer streams than asked) *and* the target stayed reachable, i.e.
nothing but the harness explains the shortfall; a flood cut short by the
target vanishing is the incident, not a harness failure.

Composed (repro.harness.rules) of the figures, then the failure rules in the order of their
reasons: network gaps, session freezes, reboots; then the rule that says why the run
proves nothing (observer starved, streams short or idle, flood cut short), which the
target vanishing from the network excuses.
"""

from __future__ import annotations

from dataclasses import dataclass

from repro.harness.checks import Gap, Reboot, Verdict, liveness_gaps, longest_silence
from repro.harness.history import Event, of_kind
from repro.harness.probes.heartbeat import leg
from repro.harness.rules import (
    Findings,
    compose,
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
# After the flood is healed, sessions must answer again within this. Measured: a TCG guest
# under 20 bulk streams on a loaded runner froze the heartbeat's session for 14 s, answering
# again within a second of the flood's end.
RECOVERY_S = 5.0
FAULT = "ssh_flood"


@dataclass(frozen=True)
class Params:
    target: str
    streams: int
    duration_s: float
    max_gap_s: float


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
                   _reboots(o), _not_in_effect(o, p))


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
                    _moved_per_stream(events, p.target),
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


def _session_freezes(o: Observed, p: Params) -> Findings:
    """ssh sessions frozen for SESSION_FREEZE_FACTOR x `max_gap_s` while TCP answered, and
    still frozen RECOVERY_S after the flood stopped (a freeze inside a network gap is that
    gap); one still open when observation ended sooner than that cannot be told apart."""
    limit = SESSION_FREEZE_FACTOR * p.max_gap_s
    recovered_by = o.ended + RECOVERY_S

    def say(g: Gap) -> str:
        after = ("and had not answered again when observation ended" if g.ongoing else
                 f"answering again only {g.end - o.ended:.1f} s after the flood stopped")
        return (f"{g.host} answered TCP but its ssh sessions froze for {g.length:.2f} s "
                f"(limit {limit:.0f} s), from {o.since(g.start)}, {after}")
    explained = [g for g in o.gaps if g.length > p.max_gap_s]
    found = stalls_over([g for g in o.freezes if g.end > recovered_by], limit,
                        explained=explained, say=say)
    too_soon = [g for g in o.freezes if g.ongoing and g.end <= recovered_by
                and g.length > limit and not any(g.start <= x.end and x.start <= g.end
                                                 for x in explained)]
    if too_soon:
        found = merge(found, inconclusive(
            f"{p.target}'s ssh sessions were still frozen when observation ended "
            f"{o.end - o.ended:.1f} s after the flood stopped: too soon (under {RECOVERY_S:g} "
            "s) to tell a busy sshd from a frozen one"))
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
