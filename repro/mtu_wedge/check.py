"""The mtu_wedge oracle: a pure function of the history.

Pass when, for the target: the longest network gap (TCP connects to port 22
failing) is at most `max_gap_s`, ssh sessions never froze for longer than
SESSION_FREEZE_FACTOR x `max_gap_s` while the network answered (a loaded
sshd is slow, not gone), its boot id never changed, every stream moved data
after the go signal, and the flood lasted `duration_s`. When the observer
itself was starved for longer than `max_gap_s` (no sample at all), a gap that
long could have gone unseen: inconclusive. Inconclusive when the flood did not reach its
target (fewer streams than asked) *and* the target stayed reachable, i.e.
nothing but the harness explains the shortfall; a flood cut short by the
target vanishing is the incident, not a harness failure.
"""

from __future__ import annotations

from dataclasses import dataclass

from repro.checks import Verdict, liveness_gaps, longest_silence, reboots
from repro.history import Event, of_kind
from repro.probes.heartbeat import leg

MIN_MOVED_BYTES = 1 << 20  # a stream that moved less than 1 MiB never carried bulk data
SESSION_FREEZE_FACTOR = 5


@dataclass(frozen=True)
class Params:
    target: str
    streams: int
    duration_s: float
    max_gap_s: float


def check(events: list[Event], p: Params) -> Verdict:
    probes = [e for e in of_kind(events, "probe") if e.host == p.target]
    starts = [e for e in of_kind(events, "fault.start")
              if e.get("fault") == "ssh_flood" and e.host == p.target]
    stops = [e for e in of_kind(events, "fault.stop") if e.get("fault") == "ssh_flood"]
    failures: list[str] = []
    inconclusive: list[str] = []
    if not leg(probes, "tcp") or not leg(probes, "ssh"):
        return Verdict.judge([], [f"no heartbeat samples of {p.target}: nothing was observed"], {})
    if not starts:
        return Verdict.judge([], [f"the ssh flood against {p.target} never started"], {})
    flood_start = starts[0].t
    flood_end = stops[-1].t if stops else probes[-1].t
    end = max(probes[-1].t, flood_end)
    network, sessions = leg(probes, "tcp"), leg(probes, "ssh")
    gaps = liveness_gaps(network, end=end)
    longest = max(gaps, key=lambda g: g.length, default=None)
    freezes = liveness_gaps(sessions, end=end)
    longest_freeze = max((g.length for g in freezes), default=0.0)
    silence = longest_silence(network)
    streams_up = int(starts[0].get("measured", {}).get("streams_up", 0))

    moved = _moved_per_stream(events, p.target)
    flood_s = round(flood_end - flood_start, 2)
    figures: dict[str, object] = {
        "longest_gap_s": round(longest.length, 3) if longest else 0.0,
        "gap_began_s": round(longest.start - flood_start, 3) if longest else None,
        "streams_up": streams_up,
        "streams_asked": p.streams,
        "mb_moved": round(sum(moved.values()) / 1e6, 1),
        "flood_s": flood_s,
        "longest_ssh_freeze_s": round(longest_freeze, 3),
        "observer_silence_s": round(silence, 3),
        "probes": len(probes),
        "tcp_failures": sum(1 for e in network if not e.get("ok")),
        "ssh_failures": sum(1 for e in sessions if not e.get("ok")),
    }

    for g in gaps:
        if g.length > p.max_gap_s:
            state = "and had not come back when observation ended" if g.ongoing else ""
            failures.append(
                f"{g.host} dropped off the network for {g.length:.2f} s (limit {p.max_gap_s} s),"
                f" from {g.start - flood_start:+.2f} s after the flood began {state}".rstrip())
    freeze_limit = SESSION_FREEZE_FACTOR * p.max_gap_s
    for g in freezes:
        if g.length > freeze_limit and not any(n.start <= g.end and g.start <= n.end
                                               for n in gaps if n.length > p.max_gap_s):
            failures.append(f"{g.host} answered TCP but its ssh sessions froze for "
                            f"{g.length:.2f} s (limit {freeze_limit:.0f} s), from "
                            f"{g.start - flood_start:+.2f} s after the flood began")
    for host, t, old, new in reboots(sessions):
        failures.append(f"{host} rebooted at {t - flood_start:+.2f} s after the flood began "
                        f"(boot id {old[:8]} -> {new[:8]})")
    vanished = any(g.length > p.max_gap_s for g in gaps)
    if silence > p.max_gap_s and not vanished:
        inconclusive.append(f"the observer was starved: {silence:.2f} s without a heartbeat "
                            f"sample (limit {p.max_gap_s} s), so a gap could have gone unseen")
    if streams_up < p.streams and not vanished:
        inconclusive.append(f"only {streams_up}/{p.streams} ssh streams ran against "
                            f"{p.target} while it stayed reachable: the flood did not take "
                            "effect")
    idle = sorted(i for i, b in moved.items() if b < MIN_MOVED_BYTES)
    if idle and not vanished:
        inconclusive.append(f"streams {idle} moved less than 1 MiB: the flood did not take "
                            "effect")
    if flood_s < p.duration_s - 0.5 and not vanished:
        inconclusive.append(f"the flood lasted {flood_s} s, "
                            f"not the {p.duration_s} s asked")
    return Verdict.judge(failures, inconclusive, figures)


def _moved_per_stream(events: list[Event], target: str) -> dict[int, int]:
    moved: dict[int, int] = {}
    for e in of_kind(events, "stream"):
        if e.host == target and e.get("up"):
            i = int(e.get("stream"))
            moved[i] = max(moved.get(i, 0), int(e.get("bytes", 0)) - int(e.get("bytes_at_go", 0)))
    return moved
