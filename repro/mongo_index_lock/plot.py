"""The latency timeline a person reads first: what the storm did to the workload.

Model: one PNG, two panels sharing the time axis (seconds since the run's
start). Top: every workload operation's latency (log scale) at its scheduled
time, writes and reads in two colours; the storm window shaded, each wave's
start a dashed line, the background transactions as grey bands along the
bottom, the thresholds (max_stall_ms, p99_ms) as horizontal lines and the
longest stall as a red band with its length written on it, and any stretch
where the harness itself was frozen hatched grey. Bottom: what the
database said meanwhile: sessions waiting for locks on repro_jobs (pg_locks)
or tickets available (serverStatus).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repro.harness.checks import Verdict
from repro.harness.history import Event
from repro.mongo_index_lock.check import Params, freezes
from repro.mongo_index_lock.storm import FAULT

COLOURS = {"write": "tab:blue", "read": "tab:green"}


def timeline(events: list[Event], verdict: Verdict, params: Params, path: Path,
             title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1.2]})
    ops = [e for e in events if e.kind == "op"]
    for name in sorted({str(e.get("name")) for e in ops}):
        mine = [e for e in ops if e.get("name") == name]
        top.scatter([e.t for e in mine], [max(float(e.get("latency_s", 0)) * 1000, 0.05)
                                          for e in mine],
                    s=4, alpha=0.6, color=COLOURS.get(name), label=f"{name} ({len(mine)})")
        bad = [e for e in mine if not e.get("ok")]
        if bad:
            top.scatter([e.t for e in bad], [float(e.get("latency_s", 0)) * 1000 for e in bad],
                        s=14, marker="x", color="black", label=f"{name} failed ({len(bad)})")
    top.set_yscale("log")
    top.set_ylabel("latency ms (from scheduled time)")
    _storm(events, top, bottom)
    _batches(events, top)
    top.axhline(params.max_stall_ms, color="red", linestyle=":", linewidth=1,
                label=f"max_stall_ms {params.max_stall_ms:g}")
    top.axhline(params.p99_ms, color="orange", linestyle=":", linewidth=1,
                label=f"p99_ms {params.p99_ms:g}")
    for i, (a, b) in enumerate(freezes(events, params.freeze_s)):
        top.axvspan(a, b, color="black", alpha=0.15, hatch="//",
                    label="harness frozen (machine overloaded)" if i == 0 else None)
    figs = verdict.figures
    if "stall_start_s" in figs:
        s0, s1 = float(figs["stall_start_s"]), float(figs["stall_end_s"])
        top.axvspan(s0, s1, color="red", alpha=0.18)
        top.annotate(f"longest stall {figs['longest_stall_ms']} ms", xy=(s0, 0.98),
                     xycoords=("data", "axes fraction"), va="top", fontsize=9, color="darkred")
    top.legend(loc="upper right", fontsize=7, ncol=2)
    top.set_title(f"{title}: {verdict.outcome.value.upper()} (p99 {figs.get('p99_ms')} ms, "
                  f"max {figs.get('max_ms')} ms)", fontsize=10)
    _database(events, bottom)
    bottom.set_xlabel("time since start of run (s)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _storm(events: list[Event], *axes: Any) -> None:
    start = next((e.t for e in events if e.kind == "fault.start" and e.get("fault") == FAULT),
                 None)
    stop = next((e.t for e in events if e.kind == "fault.stop" and e.get("fault") == FAULT),
                None)
    waves = [e for e in events if e.kind == "note" and e.get("wave")]
    for ax in axes:
        if start is not None:
            ax.axvspan(start, stop if stop is not None else start, color="gold",
                       alpha=0.12, label="deploy storm" if ax is axes[0] else None)
        for w in waves:
            ax.axvline(w.t, color="goldenrod", linestyle="--", linewidth=0.8)
    if waves:
        top = axes[0]
        for w in waves:
            top.annotate(f"wave {w.get('wave')}", xy=(w.t, 0.02),
                         xycoords=("data", "axes fraction"), fontsize=7, color="goldenrod",
                         rotation=90, va="bottom")


def _batches(events: list[Event], ax: Any) -> None:
    begin = None
    first = True
    for e in events:
        if e.kind != "batch":
            continue
        if e.get("phase") == "begin":
            begin = e.t
        elif begin is not None:
            ax.axvspan(begin, e.t, ymin=0, ymax=0.03, color="dimgray",
                       label="background write transaction" if first else None)
            first = False
            begin = None


def _database(events: list[Event], ax: Any) -> None:
    samples = [e for e in events if e.kind == "db"]
    locks = [e for e in samples if e.get("source") == "pg_locks"]
    tickets = [e for e in samples if e.get("source") == "serverStatus"]
    if locks:
        ax.plot([e.t for e in locks], [e.get("waiting", 0) for e in locks],
                color="tab:red", linewidth=1, label="sessions waiting for a lock")
        ax.plot([e.t for e in locks], [e.get("waiting_share", 0) for e in locks],
                color="tab:purple", linewidth=1, label="of them CREATE INDEX (SHARE)")
        ax.set_ylabel("pg_locks on repro_jobs")
    elif tickets:
        ax.plot([e.t for e in tickets], [e.get("read_available", 0) for e in tickets],
                color="lightskyblue", label="read tickets available")
        ax.plot([e.t for e in tickets], [e.get("write_available", 0) for e in tickets],
                color="navy", label="write tickets available")
        ax.set_ylabel("serverStatus tickets")
    else:
        ax.set_ylabel("no database samples")
    ax.legend(loc="upper right", fontsize=7)
