"""The kernel_panic oracle: a pure function of the history.

Evidence comes only from outside the guest: the serial console (`kernel`
findings and `host` boot events from repro.harness.probes.kernel_log), what QEMU saw
(`host` events from source "qemu": reset, panicked, exited), the boot-id
heartbeat (`probe`), and the harness's own operations on the host (`op`:
volume_setup, workspace, fsck) and the fill it measured (`fault.measure`).
The script under test is never read.

Fail on any of:
  - a kernel-log finding (panic, Oops, BUG, hung task, I/O error, EXT4-fs
    error, snapshot invalidated);
  - a reboot: a boot banner on the console, QEMU resetting the guest, a boot
    id that changed, or the VM exiting;
  - `misses` (3) heartbeat samples in a row that got no answer, judged on the
    TCP leg of the heartbeat (a dead kernel answers no SYN; a TCG
    guest busy with 8 direct-I/O writers answers SYNs but can be slow to run
    an ssh command, which is load, not death);
  - a filesystem that `e2fsck -n` does not find clean, or a volume_setup that
    failed or left nothing mounted at WORKSPACE;
  - fill writers that ended on an I/O error.
Inconclusive, when nothing above happened, if: no heartbeat was observed, the
fill never ran or stopped short of `fill_to` (without ENOSPC), or fewer
rounds than asked completed.

Host loss. A fill cut short by the host dying is the incident, not a
shortfall, but only when the death is seen independently of the fill
(`loss_evidence`): a reboot (console banner, QEMU reset/panicked/exited, a
changed boot id), a panic or Oops on the console, or the heartbeat's miss rule
above. The fill's own `host_lost` (its ssh progress polls went unanswered) is
not evidence: a healthy TCG guest under the fill can be slower than a poll's
timeout. Without evidence a lost fill is a round that did not complete, and
its shortfall counts like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from repro.harness.checks import Gap, Verdict, liveness_gaps, reboots
from repro.harness.history import Event, of_kind
from repro.harness.rules import at, fault_events, lost_gaps, missed_in_a_row, rebooted

# console findings that mean the kernel itself went down (others are failures, not loss)
LOSS_PATTERNS = ("panic", "oops")
LIFE = {"boot": "the guest booted again (console banner)", "reset": "QEMU reset the guest",
        "panicked": "QEMU saw the guest panic", "exited": "the VM exited"}


@dataclass(frozen=True)
class Params:
    host: str
    fill_to: float
    rounds: int
    misses: int = 3  # consecutive missed heartbeat samples that mean "down"


@dataclass(frozen=True)
class Observed:
    """What the history shows of one host, grouped for the rules below."""

    events: list[Event]
    probes: list[Event]
    kernel: list[Event]
    life: list[Event]  # host lifecycle events, duplicates within 2 s collapsed
    reachable: list[Event]  # TCP-leg samples with `ok` = the TCP answer
    gaps: list[Gap]
    lost: list[tuple[Gap, int]]  # gaps with at least `misses` missed samples, and the count
    t0: float | None  # when the first fill began
    end: float  # the host's last event: the end of observation

    def since(self, t: float) -> str:
        return _since(t, self.t0)


def observe(events: list[Event], p: Params) -> Observed:
    mine = [e for e in events if e.host == p.host]
    probes = of_kind(mine, "probe")
    fills = fault_events(mine, "start", "disk_fill")
    life: list[Event] = []
    for e in of_kind(mine, "host"):  # QEMU may report one reset several times
        if e.get("event") in LIFE and not any(
                x.get("event") == e.get("event") and e.t - x.t < 2.0 for x in life):
            life.append(e)
    reachable = [Event(e.t, e.kind, e.host, e.fields | {"ok": e.get("tcp_ok", e.get("ok"))})
                 for e in probes if e.get("leg", "tcp") == "tcp"]
    end = max((e.t for e in mine), default=0.0)
    return Observed(mine, probes, of_kind(mine, "kernel"), life, reachable,
                    liveness_gaps(reachable, end=end), lost_gaps(reachable, p.misses, end=end),
                    fills[0].t if fills else None, end)


def loss_evidence(events: list[Event], p: Params) -> list[str]:
    """Independent signs that the host went down (empty when none): see the module doc."""
    return _evidence(observe(events, p))


def _evidence(o: Observed) -> list[str]:
    found = [f"kernel {e.get('pattern')}" for e in o.kernel if e.get("pattern") in LOSS_PATTERNS]
    found += [f"host {e.get('event')}" for e in o.life]
    found += ["boot id changed" for _ in reboots(o.probes)]
    found += [f"heartbeat: {n} missed in a row" for _, n in o.lost]
    return list(dict.fromkeys(found))


def _since(t: float, t0: float | None) -> str:
    return f"{t - t0:+.2f} s after the first fill began" if t0 is not None else at(t)


def _by_pattern(kernel: list[Event]) -> dict[str, list[Event]]:
    by: dict[str, list[Event]] = {}
    for e in kernel:
        by.setdefault(str(e.get("pattern")), []).append(e)
    return by


def _kernel_failures(o: Observed) -> list[str]:
    out = []
    for pattern, evs in _by_pattern(o.kernel).items():
        more = f" (and {len(evs) - 1} more)" if len(evs) > 1 else ""
        out.append(f"kernel log: {pattern} {_since(evs[0].t, o.t0)}: "
                   f"{str(evs[0].get('line')).strip()[:160]}{more}")
    return out


def _reboot_failures(o: Observed) -> list[str]:
    out = []
    for e in o.life:
        what = LIFE[str(e.get("event"))]
        if e.get("event") == "exited":
            what += f" ({e.get('detail', '')})"
        out.append(f"{what} {_since(e.t, o.t0)}")
    return out + rebooted(o.probes, since=o.since).failures


def _heartbeat_failures(o: Observed, p: Params) -> list[str]:
    return missed_in_a_row(o.reachable, p.misses, end=o.end, since=o.since).failures


def _op_failures(o: Observed) -> list[str]:
    labels = {"volume_setup": "volume_setup failed",
              "workspace": "volume_setup left nothing mounted at WORKSPACE",
              "fsck": "filesystem not clean (e2fsck -n)"}
    out = []
    for e in of_kind(o.events, "op"):
        name = str(e.get("name"))
        if name in labels and not e.get("ok"):
            detail = str(e.get("detail", "")).strip().replace("\n", " | ")[-200:]
            label = labels[name]
            if name == "fsck" and e.get("exit_code") is None:
                label = "e2fsck -n could not run (host unreachable)"
            out.append(f"{label} in round {e.get('round')}: {detail}")
    return out


def _measures(o: Observed) -> list[Event]:
    return [e for e in of_kind(o.events, "fault.measure") if e.get("fault") == "disk_fill"]


def _writer_failures(o: Observed) -> list[str]:
    io_errors = [err for m in _measures(o) for err in m.get("errors", [])]
    return [f"fill writers hit errors: {'; '.join(io_errors[:3])}"] if io_errors else []


def _shortfall(m: Event, p: Params) -> str:
    """The fill's shortfall; for a lost fill recorded without one (older histories), from the
    level it reached."""
    short = str(m.get("shortfall") or "")
    fraction = float(m.get("fraction", -1))
    if not short and m.get("host_lost") and fraction + 0.005 < p.fill_to and \
            "enospc" not in dict(m.get("ends") or {}).values():
        short = (f"fill reached {fraction:.1%} of the filesystem, short of {p.fill_to:.0%}"
                 if fraction >= 0 else "the fill level was never measured")
    return short


def _unconfirmed_loss(m: Event, rnd: object, short: str, p: Params) -> str:
    polls = m.get("failed_polls")
    what = f"its progress polls went unanswered{f' ({polls} in a row)' if polls else ''}"
    nobody = (f"nothing else saw the host die (no reboot, no panic or oops on the console, "
              f"never {p.misses} heartbeat misses in a row), so it was slow, not lost")
    if short:
        return f"round {rnd}: {short}, when {what}; {nobody}: the fault did not take effect"
    return f"round {rnd}: the fill stopped when {what}; {nobody}: the round did not complete"


def _not_in_effect(o: Observed, evidence: list[str], failures: list[str], p: Params
                   ) -> list[str]:
    """Why the run proves nothing (nothing observed, fill short, rounds missing)."""
    out = []
    measures = _measures(o)
    if not o.probes:
        out.append(f"no heartbeat samples of {p.host}: nothing was observed")
    if o.t0 is None:
        out.append("the disk fill never started")
    elif not evidence:  # a host seen dying explains any shortfall: that is the incident
        done = 0
        for i, m in enumerate(measures):
            short, rnd = _shortfall(m, p), m.get("round", i + 1)
            if m.get("host_lost"):
                out.append(_unconfirmed_loss(m, rnd, short, p))
            elif short:
                out.append(f"round {rnd}: {short}: the fault did not take effect")
            else:
                done += 1
        if done < p.rounds and not failures:
            out.append(f"only {done} of {p.rounds} rounds completed")
    return out


def _figures(o: Observed, evidence: list[str]) -> dict[str, Any]:
    measures = _measures(o)
    panic = next((e for e in o.kernel if e.get("pattern") == "panic"), None)
    first_miss = None
    if panic is not None:
        first_miss = next((e for e in o.reachable if e.t >= panic.t and not e.get("ok")), None)
    longest = max(o.gaps, key=lambda g: g.length, default=None)
    return {
        "rounds_filled": len(measures),
        "fill_reached": [round(float(m.get("fraction", -1)), 3) for m in measures],
        "kernel_findings": {k: len(v) for k, v in _by_pattern(o.kernel).items()},
        "panic_after_fill_s": round(panic.t - o.t0, 2) if panic and o.t0 is not None else None,
        "heartbeat_miss_after_panic_s": (round(first_miss.t - panic.t, 2)
                                         if panic and first_miss else None),
        "reboots": len(reboots(o.probes)),
        "longest_gap_s": round(longest.length, 2) if longest else 0.0,
        "probes": len(o.probes),
        "fill_polls_lost": sum(1 for m in measures if m.get("host_lost")),
        "host_loss_evidence": evidence,
    }


def check(events: list[Event], p: Params) -> Verdict:
    o = observe(events, p)
    failures = (_kernel_failures(o) + _reboot_failures(o) + _heartbeat_failures(o, p)
                + _op_failures(o) + _writer_failures(o))
    evidence = _evidence(o)
    inconclusive = _not_in_effect(o, evidence, failures, p)
    return Verdict.judge(failures, [] if failures else inconclusive, _figures(o, evidence))
