"""The kernel_panic oracle: a pure function of the history.

Evidence comes only from outside the guest: the serial console (`kernel`
findings and `host` boot events from repro.probes.kernel_log), what QEMU saw
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
rounds than asked completed. A fill cut short by the host dying is the
incident, not a shortfall.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from repro.checks import Verdict, liveness_gaps, reboots
from repro.history import Event, of_kind


@dataclass(frozen=True)
class Params:
    host: str
    fill_to: float
    rounds: int
    misses: int = 3  # consecutive missed heartbeat samples that mean "down"


def _since(t: float, t0: float | None) -> str:
    return f"{t - t0:+.2f} s after the first fill began" if t0 is not None else f"at {t:.2f} s"


def check(events: list[Event], p: Params) -> Verdict:
    mine = [e for e in events if e.host == p.host]
    probes = of_kind(mine, "probe")
    fills = [e for e in of_kind(mine, "fault.start") if e.get("fault") == "disk_fill"]
    measures = [e for e in of_kind(mine, "fault.measure") if e.get("fault") == "disk_fill"]
    t0 = fills[0].t if fills else None
    failures: list[str] = []
    inconclusive: list[str] = []

    kernel = of_kind(mine, "kernel")
    by_pattern: dict[str, list[Event]] = {}
    for e in kernel:
        by_pattern.setdefault(str(e.get("pattern")), []).append(e)
    for pattern, evs in by_pattern.items():
        more = f" (and {len(evs) - 1} more)" if len(evs) > 1 else ""
        failures.append(f"kernel log: {pattern} {_since(evs[0].t, t0)}: "
                        f"{str(evs[0].get('line')).strip()[:160]}{more}")

    life: list[Event] = []
    for e in of_kind(mine, "host"):  # QEMU may report one reset several times
        if e.get("event") in ("boot", "reset", "panicked", "exited") and not any(
                x.get("event") == e.get("event") and e.t - x.t < 2.0 for x in life):
            life.append(e)
    for e in life:
        what = {"boot": "the guest booted again (console banner)",
                "reset": "QEMU reset the guest", "panicked": "QEMU saw the guest panic",
                "exited": f"the VM exited ({e.get('detail', '')})"}[str(e.get("event"))]
        failures.append(f"{what} {_since(e.t, t0)}")
    for host, t, old, new in reboots(probes):
        failures.append(f"{host} rebooted: boot id {old[:8]} -> {new[:8]}, seen by the "
                        f"heartbeat {_since(t, t0)}")

    end = max((e.t for e in mine), default=0.0)
    tcp = [e for e in probes if e.get("leg", "tcp") == "tcp"]
    reachable = [Event(e.t, e.kind, e.host, e.fields | {"ok": e.get("tcp_ok", e.get("ok"))})
                 for e in tcp]
    gaps = liveness_gaps(reachable, end=end)
    for g in gaps:
        missed = sum(1 for e in reachable if g.start < e.t <= g.end and not e.get("ok"))
        if missed >= p.misses:
            tail = ", still down when observation ended" if g.ongoing else ""
            failures.append(f"heartbeat lost the host for {g.length:.2f} s ({missed} missed "
                            f"samples in a row, limit {p.misses - 1}) {_since(g.start, t0)}{tail}")

    for e in of_kind(mine, "op"):
        name = e.get("name")
        if name in ("volume_setup", "workspace", "fsck") and not e.get("ok"):
            detail = str(e.get("detail", "")).strip().replace("\n", " | ")[-200:]
            label = {"volume_setup": "volume_setup failed",
                     "workspace": "volume_setup left nothing mounted at WORKSPACE",
                     "fsck": "filesystem not clean (e2fsck -n)"}[str(name)]
            if name == "fsck" and e.get("exit_code") is None:
                label = "e2fsck -n could not run (host unreachable)"
            failures.append(f"{label} in round {e.get('round')}: {detail}")

    fractions = [float(m.get("fraction", -1)) for m in measures]
    io_errors = [err for m in measures for err in m.get("errors", [])]
    if io_errors:
        failures.append(f"fill writers hit errors: {'; '.join(io_errors[:3])}")

    host_died = any(m.get("host_lost") for m in measures) or bool(life) or bool(reboots(probes))
    if not probes:
        inconclusive.append(f"no heartbeat samples of {p.host}: nothing was observed")
    if not fills:
        inconclusive.append("the disk fill never started")
    elif not host_died:
        short = [str(m.get("shortfall")) for m in measures if m.get("shortfall")]
        inconclusive += [f"round {i + 1}: {s}: the fault did not take effect"
                         for i, s in enumerate(short)]
        done = len([m for m in measures if not m.get("shortfall")])
        if done < p.rounds and not failures:
            inconclusive.append(f"only {done} of {p.rounds} rounds completed")

    panic = next((e for e in kernel if e.get("pattern") == "panic"), None)
    first_miss = None
    if panic is not None:
        first_miss = next((e for e in reachable if e.t >= panic.t and not e.get("ok")), None)
    longest = max(gaps, key=lambda g: g.length, default=None)
    figures: dict[str, Any] = {
        "rounds_filled": len(measures),
        "fill_reached": [round(f, 3) for f in fractions],
        "kernel_findings": {k: len(v) for k, v in by_pattern.items()},
        "panic_after_fill_s": round(panic.t - t0, 2) if panic and t0 is not None else None,
        "heartbeat_miss_after_panic_s": (round(first_miss.t - panic.t, 2)
                                         if panic and first_miss else None),
        "reboots": len(reboots(probes)),
        "longest_gap_s": round(longest.length, 2) if longest else 0.0,
        "probes": len(probes),
    }
    return Verdict.judge(failures, [] if failures else inconclusive, figures)
