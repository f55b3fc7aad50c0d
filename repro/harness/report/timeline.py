"""The timeline PNG of one incident result, drawn from its history.jsonl.

Model: the history is the only input (the checker sees the same events), so a
figure can be redrawn from any stored report. Time runs left to right in
seconds since the run's clock started; every panel shares that axis and the
run's fault windows (`fault.start` .. `fault.stop`, shaded orange and named
at the top), kernel-log findings (`kernel`, purple dashed lines, named) and
host life-cycle incidents (`host` events other than ready/init: reset,
exited, panicked; black dotted lines) are drawn across all panels. Panels
appear only when the history has their data:

  reachability  one lane per probed host and heartbeat leg (tcp: on the
                network; ssh: a session round trip): a tick per sample (green
                ok, red failed), liveness gaps as red bars with their length,
                a boot id change as a black star (the host rebooted)
  latency       heartbeat ssh round trips and workload operation latencies
                (log scale, milliseconds); failed operations as red crosses
  throughput    MB moved by flood streams (sum of their byte counters)

and one panel per `panel` name an incident's own events carry, so an incident
adds a panel without touching this module:

  series        `history.append("series", host, panel=P, name=N, value=V, unit=U)`:
                a line per (host, name) in panel P
  mark          `history.append("mark", host, panel=P, name=N)`: one lane per host
                in panel P, a marker per name at each event (decisions, fires,
                evictions, alerts)

A history with none of these still gets a figure: the fault windows and
events over an empty lane, so a report never lacks its timeline.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repro.harness.checks import liveness_gaps, reboots
from repro.harness.history import Event, of_kind

FAULT_COLOUR = "#f5a623"
GAP_COLOUR = "#d0021b"
KERNEL_COLOUR = "#7b1fa2"
OK_COLOUR = "#2e7d32"
VERDICT_COLOURS = {"pass": OK_COLOUR, "fail": GAP_COLOUR, "inconclusive": "#ef6c00",
                   "unknown": "#616161"}
QUIET_HOST_EVENTS = {"ready", "init", "started"}


@dataclass(frozen=True)
class Window:
    name: str
    host: str
    start: float
    end: float
    open: bool  # no fault.stop in the history: the window lasted until the end


def fault_windows(events: Iterable[Event], end: float) -> list[Window]:
    """Pair each fault.start with the next fault.stop of the same fault and host."""
    windows: list[Window] = []
    pending: dict[tuple[str, str], Event] = {}
    for e in events:
        key = (str(e.get("fault", "fault")), e.host)
        if e.kind == "fault.start":
            pending[key] = e
        elif e.kind == "fault.stop" and key in pending:
            s = pending.pop(key)
            windows.append(Window(key[0], e.host, s.t, e.t, False))
    windows += [Window(k[0], k[1], s.t, end, True) for k, s in pending.items()]
    return sorted(windows, key=lambda w: w.start)


def _mb_moved(events: list[Event]) -> tuple[list[float], list[float]]:
    latest: dict[tuple[str, object], float] = {}
    xs, ys = [], []
    for e in of_kind(events, "stream"):
        latest[(e.host, e.get("stream"))] = float(e.get("bytes") or 0)
        xs.append(e.t)
        ys.append(sum(latest.values()) / 1e6)
    return xs, ys


def _ms(events: list[Event], key: str) -> list[float]:
    """Milliseconds, floored at 0.01 so a log scale can show them."""
    return [max(float(e.get(key)) * 1e3, 0.01) for e in events]


def draw(events: list[Event], path: Path, title: str, outcome: str = "",
         panels_of_incident: tuple[str, ...] = ()) -> Path:
    """Write the timeline of `events` to `path` (PNG) and return it. `panels_of_incident`
    (its spec's) limits the panels to those; none given: every panel with data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    events = sorted(events, key=lambda e: e.t)
    end = events[-1].t if events else 1.0
    probes = of_kind(events, "probe")
    ops = [e for e in of_kind(events, "op") if e.get("latency_s") is not None]
    rtts = [e for e in probes if e.get("rtt_s") is not None]
    xs_mb, ys_mb = _mb_moved(events)
    own = sorted({str(e.get("panel")) for e in events
                  if e.kind in ("series", "mark") and e.get("panel")})
    panels = (["reachability"] if probes else []) + (["latency"] if ops or rtts else []) + (
        ["throughput"] if xs_mb else []) + own
    if panels_of_incident:
        panels = [p for p in panels if p in panels_of_incident]
    panels = panels or ["reachability"]  # an empty lane still carries the fault windows
    ratios = {"reachability": 1.2, "latency": 2.0, "throughput": 1.2} | {
        p: 1.4 for p in own}
    hosts = sorted({e.host for e in probes})
    fig, axes = plt.subplots(len(panels), 1, sharex=True, squeeze=False,
                             figsize=(11, 1.4 + 1.5 * sum(ratios[p] for p in panels)),
                             gridspec_kw={"height_ratios": [ratios[p] for p in panels]})
    ax = dict(zip(panels, axes[:, 0], strict=True))

    lane = ax[panels[0]]
    lanes = sorted({(e.host, str(e.get("leg") or "")) for e in probes})
    labels = [f"{h} ({leg})" if leg else h for h, leg in lanes]
    for i, (host, leg) in enumerate(lanes):
        mine = [e for e in probes if e.host == host and str(e.get("leg") or "") == leg]
        good = [e.t for e in mine if e.get("ok")]
        bad = [e.t for e in mine if not e.get("ok")]
        lane.scatter(good, [i] * len(good), marker="|", s=90, color=OK_COLOUR, zorder=3,
                     label="heartbeat ok" if i == 0 else None)
        lane.scatter(bad, [i] * len(bad), marker="x", s=30, color=GAP_COLOUR, zorder=3,
                     label="heartbeat failed" if i == 0 else None)
        for gap in liveness_gaps(mine, end=end):
            lane.barh(i, gap.length, left=gap.start, height=0.5, color=GAP_COLOUR,
                      alpha=0.3, zorder=1)
            lane.text(gap.start + gap.length / 2, i + 0.32, f"gap {gap.length:.1f} s"
                      + (" (not back)" if gap.ongoing else ""), ha="center", va="bottom",
                      fontsize=8, color=GAP_COLOUR)
    for host, t, _old, _new in reboots(probes):
        row = next((i for i, (h, leg) in enumerate(lanes) if h == host and leg != "tcp"), 0)
        lane.scatter([t], [row], marker="*", s=160, color="black",
                     label="rebooted (boot id changed)", zorder=5)
    if "reachability" in ax:
        lane.set_yticks(range(len(lanes)) or [0], labels or ["(no heartbeat)"], fontsize=8)
        lane.set_ylim(-0.6, max(len(lanes), 1) - 0.2)
        lane.set_title("reachability (heartbeat from outside the host)", fontsize=9, loc="left")

    if "latency" in ax:
        lat = ax["latency"]
        for host in hosts:
            mine = [e for e in rtts if e.host == host]
            if mine:  # a host probed by TCP only has no round trips to draw
                lat.plot([e.t for e in mine], _ms(mine, "rtt_s"), lw=1,
                         label=f"ssh round trip {host}")
        for name in sorted({str(e.get("name")) for e in ops}):
            mine = [e for e in ops if str(e.get("name")) == name]
            done = [e for e in mine if e.get("ok", True)]
            lat.scatter([e.t for e in done], _ms(done, "latency_s"), s=5, alpha=0.6,
                        label=f"op {name}")
            failed = [e for e in mine if not e.get("ok", True)]
            if failed:
                lat.scatter([e.t for e in failed], _ms(failed, "latency_s"), s=18, marker="x",
                            color=GAP_COLOUR, label=f"op {name} failed")
        lat.set_yscale("log")
        lat.set_ylabel("ms", fontsize=8)
        lat.set_title("latency", fontsize=9, loc="left")
    if "throughput" in ax:
        tp = ax["throughput"]
        tp.step(xs_mb, ys_mb, where="post", color="#1565c0", lw=1.2)
        tp.set_ylabel("MB moved", fontsize=8)
        tp.set_title("flood streams: data moved", fontsize=9, loc="left")
    for panel in own:
        if panel in ax:
            _own_panel(ax[panel], [e for e in events if e.get("panel") == panel], panel)

    for w in fault_windows(events, end):
        for a in ax.values():
            a.axvspan(w.start, w.end, color=FAULT_COLOUR, alpha=0.18, lw=0)
        lane.annotate(f"{w.name}{' (never healed)' if w.open else ''}",
                      xy=(w.start, 1.0), xycoords=("data", "axes fraction"),
                      xytext=(3, -10), textcoords="offset points", fontsize=8,
                      color="#8a5a00")
    for e in of_kind(events, "kernel"):
        for a in ax.values():
            a.axvline(e.t, color=KERNEL_COLOUR, ls="--", lw=1)
        lane.annotate(f"kernel: {e.get('pattern', '?')}", xy=(e.t, 0.02),
                      xycoords=("data", "axes fraction"), rotation=90, fontsize=7,
                      color=KERNEL_COLOUR, ha="right", va="bottom")
    for e in of_kind(events, "host"):
        what = str(e.get("event", ""))
        if what and what not in QUIET_HOST_EVENTS:
            for a in ax.values():
                a.axvline(e.t, color="black", ls=":", lw=1)
            lane.annotate(f"{e.host}: {what}", xy=(e.t, 0.5), xycoords=("data", "axes fraction"),
                          rotation=90, fontsize=7, ha="right")

    for a in ax.values():
        handles, _ = a.get_legend_handles_labels()
        if handles:
            a.legend(fontsize=7, loc="upper right", framealpha=0.8)
        a.grid(alpha=0.25)
    axes[-1, 0].set_xlabel("seconds since the run started")
    axes[-1, 0].set_xlim(0, max(end, 1.0) * 1.02)
    fig.suptitle(title + (f": {outcome.upper()}" if outcome else ""), fontsize=11,
                 color=VERDICT_COLOURS.get(outcome, "black"), x=0.01, ha="left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


MARKERS = ("|", "x", "v", "o", "s", "D", "^", "*")


def _own_panel(a: Any, events: list[Event], title: str) -> None:
    """An incident's panel: its series as lines, its marks as ticks on one lane per host."""
    series = [e for e in events if e.kind == "series"]
    for host, name in sorted({(e.host, str(e.get("name"))) for e in series}):
        mine = [e for e in series if e.host == host and str(e.get("name")) == name]
        a.plot([e.t for e in mine], [float(e.get("value") or 0) for e in mine], lw=1.1,
               drawstyle="steps-post", label=f"{name} {host}".strip())
    units = sorted({str(e.get("unit")) for e in series if e.get("unit")})
    if units:
        a.set_ylabel(", ".join(units), fontsize=8)
    marks = [e for e in events if e.kind == "mark"]
    if marks and not series:
        lanes = sorted({e.host for e in marks})
        kinds = sorted({str(e.get("name")) for e in marks})
        for i, host in enumerate(lanes):
            for j, name in enumerate(kinds):
                ts = [e.t for e in marks if e.host == host and str(e.get("name")) == name]
                a.scatter(ts, [i] * len(ts), marker=MARKERS[j % len(MARKERS)], s=60,
                          color=f"C{j}", zorder=3, label=name if i == 0 else None)
        a.set_yticks(range(len(lanes)), lanes, fontsize=8)
        a.set_ylim(-0.6, len(lanes) - 0.4)
    elif marks:  # marks over a series panel: vertical lines, named
        for e in marks:
            a.axvline(e.t, color="black", ls="-.", lw=0.8)
            a.annotate(f"{e.host}: {e.get('name')}", xy=(e.t, 0.95),
                       xycoords=("data", "axes fraction"), rotation=90, fontsize=7,
                       ha="right", va="top")
    a.set_title(title, fontsize=9, loc="left")

