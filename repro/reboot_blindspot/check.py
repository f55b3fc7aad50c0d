"""The reboot_blindspot oracle: did the named alert page on a fast reboot, and only then?

A pure function of the history. Evidence, all from outside the guest:
  - the serial console (repro.harness.probes.kernel_log): the `panic` finding (the
    moment of the crash) and a second boot banner (`host` event "boot");
  - the boot-id heartbeat (`probe`): a new boot id (or the one the guest's init prints
    on the console's ready line, if that came first), and when port 22 answered again;
  - the sysrq_crash fault window (`fault.start`, with its shortfall);
  - what Prometheus said (repro.harness.probes.alerts): `monitor` rounds (the node
    exporter's `up`, `boot_time`, the server heartbeat's age `hb_age`, the rules' last
    evaluation) and `alert` state changes of every instance of the named alert, with
    `active_since` (when its expression began to hold, without a break).
The rule file under test is never read: a fixed configuration is one whose alert fires.

Composed, failures first:
  1. quiet: the alert was firing during the control window (from the first round in
     which Prometheus had scraped the node and its server heartbeat, plus `settle_s` for
     the rules to see it, to the moment the crash trigger was sent: its ssh command alone
     can make a TCG guest miss a scrape). A pending
     alert there is not a failure (a scrape missed under load makes `up == 0` pending for
     a second); one that stays pending until it fires after the panic is caught by 2. A
     window in which Prometheus could not scrape the node for over `starved_s` (a loaded
     guest or runner: scrapes time out) proves nothing: inconclusive, firing or not.
  2. paged: an instance of the alert fired within `max_alert_s` of the panic *and* became
     active after the trigger. One active since before it fires whether or not the server
     reboots (a rule that always fires): fail. Not firing, or firing later, is the
     incident (the monitoring was blind to the fast reboot): fail, but only when the run
     could have seen it fire: observation reached the deadline, Prometheus scraped the
     rebooted guest at least `settle_s` before it, and neither the alert watcher nor
     Prometheus's evaluator was starved (each missing is inconclusive: a stalled observer
     is not a blind rule).
Inconclusive, when nothing failed, if: the crash never happened or did not take; the
reboot was not confirmed by both a second boot banner on the console and a new boot id;
port 22 was down longer than `max_alert_s` (not the fast reboot the incident is about);
the control window was shorter than `quiet_s` or never began.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from repro.harness.checks import Reboot, Verdict, liveness_gaps, reboots
from repro.harness.history import Event, of_kind
from repro.harness.probes.heartbeat import leg
from repro.harness.rules import Findings, compose, fault_took_effect, inconclusive

FAULT = "sysrq_crash"
TRIGGER = "crash_trigger"  # the `op` the scenario records as it sends the crash trigger
ACTIVE_SLACK_S = 0.5  # Prometheus's activeAt (its evaluation's time) against the trigger


@dataclass(frozen=True)
class Params:
    host: str
    alert: str
    max_alert_s: float
    quiet_s: float
    evaluation_interval_s: float = 1.0
    scrape_interval_s: float = 1.0
    starved_s: float = 5.0  # the watcher or the evaluator silent this long: could not see

    @property
    def settle_s(self) -> float:
        """Time a rule needs once the rebooted node is scraped: a scrape and two evaluations
        (and a watcher round)."""
        return self.scrape_interval_s + 2 * self.evaluation_interval_s + 1.0


@dataclass(frozen=True)
class Observed:
    monitor: list[Event]          # the watcher's answered rounds
    alerts: list[Event]           # state changes of instances of the named alert
    panic_t: float | None         # the crash as the console showed it (else the fault start)
    trigger_t: float | None       # the crash trigger was sent: the control window's end
    quiet_t: float | None         # the control window's start
    up_t: float | None            # port 22 answered again after the panic
    reboot: Reboot | None         # the first new boot id after the panic
    console_boot: Event | None    # the first boot banner after the panic
    back_t: float | None          # Prometheus scraped the new boot (its boot time changed)
    end: float                    # the last answered watcher round

    def after(self, t: float | None) -> str:
        if t is None or self.panic_t is None:
            return "never"
        return f"{t - self.panic_t:.1f} s after the panic"

    def since_panic(self, t: float | None) -> float | None:
        return None if t is None or self.panic_t is None else round(t - self.panic_t, 1)


def observe(events: list[Event], p: Params) -> Observed:
    mine = [e for e in events if e.host == p.host]
    monitor = [e for e in of_kind(mine, "monitor") if e.get("ok")]
    alerts = [e for e in of_kind(mine, "alert") if e.get("alert") == p.alert]
    panic = next((e.t for e in of_kind(mine, "kernel") if e.get("pattern") == "panic"), None)
    starts = [e.t for e in of_kind(mine, "fault.start") if e.get("fault") == FAULT]
    panic_t = panic if panic is not None else (starts[0] if starts else None)
    sent = [e.t for e in of_kind(mine, "op") if e.get("name") == TRIGGER]
    trigger_t = sent[0] if sent else panic_t
    if trigger_t is not None and panic_t is not None:
        trigger_t = min(trigger_t, panic_t)
    quiet_t = next((e.t for e in monitor if e.get("up") == 1 and e.get("hb_age") is not None
                    and (trigger_t is None or e.t < trigger_t)), None)
    up_t = reboot = console_boot = back_t = None
    if panic_t is not None:
        probes = of_kind(mine, "probe")
        tcp = [e for e in leg(probes, "tcp") if e.t > panic_t]
        lost = next((e.t for e in tcp if not e.get("ok")), None)
        up_t = next((e.t for e in tcp if lost is not None and e.t > lost and e.get("ok")), None)
        reboot = _new_boot(probes, of_kind(mine, "host"), panic_t)
        console_boot = next((e for e in of_kind(mine, "host")
                             if e.get("event") == "boot" and e.t > panic_t), None)
        before = [e.get("boot_time") for e in monitor
                  if e.t < panic_t and e.get("boot_time") is not None]
        back_t = next((e.t for e in monitor if e.t > panic_t and e.get("up") == 1
                       and e.get("boot_time") not in (None, *before[-1:])), None)
    end = monitor[-1].t if monitor else 0.0
    return Observed(monitor, alerts, panic_t, trigger_t, quiet_t, up_t, reboot, console_boot,
                    back_t, end)


def _new_boot(probes: list[Event], life: list[Event], panic_t: float) -> Reboot | None:
    """The first new boot id after the panic: seen by the heartbeat, or printed by the
    guest's init on the console (its ready line), whichever came first. (A TCG guest on a
    loaded runner can take longer to accept the heartbeat's fresh login than to print it.)"""
    seen = next((r for r in reboots(probes) if r.t > panic_t), None)
    old = [str(e.get("boot_id")) for e in probes if e.t < panic_t and e.get("boot_id")]
    ready = next((e for e in life if e.get("event") == "guest_ready" and e.t > panic_t
                  and e.get("boot_id") and e.get("boot_id") not in old), None)
    if ready is not None and (seen is None or ready.t < seen.t):
        return Reboot(ready.host, ready.t, old[-1] if old else "", str(ready.get("boot_id")))
    return seen


def _labels(e: Event) -> str:
    labels = {k: v for k, v in dict(e.get("labels") or {}).items() if k != "alertname"}
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "(no labels)"


def _reason(e: Event) -> str:
    """An instance's `reason` label (the shipped rules name theirs), else its labels."""
    return str(dict(e.get("labels") or {}).get("reason") or _labels(e))


def quiet(o: Observed, p: Params) -> Findings:
    if o.trigger_t is None:
        return Findings()
    end = o.trigger_t
    if o.quiet_t is None:
        return inconclusive("the control window never began: Prometheus never had both the "
                            "node's `up` and the server heartbeat before the crash")
    # the rules get a few evaluations to settle once the node is first seen (an alert that
    # fired while the exporter was still starting resolves then; one that always fires
    # does not)
    settled = min(o.quiet_t + p.settle_s, end)
    in_window = [e for e in o.alerts if e.t <= end]
    held = {_labels(e): e for e in in_window if e.t <= settled}  # the states at `settled`
    fired = [e for e in [*held.values(), *(e for e in in_window if e.t > settled)]
             if e.get("state") == "firing"]
    out = Findings(figures={
        "quiet_window_s": round(end - o.quiet_t, 1),
        "quiet_pending": sum(1 for e in in_window if e.t > o.quiet_t
                             and e.get("state") == "pending")})
    rounds = [e for e in o.monitor if o.quiet_t <= e.t <= end]
    blind = max((g.length for g in liveness_gaps(rounds, end=end, key="up")), default=0.0)
    if blind > p.starved_s:  # the monitoring could not see the node: nothing to judge by
        out.inconclusive.append(
            f"Prometheus could not scrape the node for {blind:.1f} s of the quiet control "
            f"window (limit {p.starved_s:g} s): the guest or the runner was too loaded for the "
            "window to prove anything" + (f" ({p.alert} fired in it)" if fired else ""))
    else:
        out.failures += [f"{p.alert} was firing during the quiet control window, with "
                         f"nothing wrong ({_labels(e)}; firing since {end - e.t:.1f} s before "
                         "the crash trigger): a rule that fires without a reboot proves nothing"
                         for e in fired[:1]]
    if end - o.quiet_t < p.quiet_s - 0.5:
        out.inconclusive.append(f"the quiet control window lasted {end - o.quiet_t:.1f} s, "
                                f"less than quiet_s ({p.quiet_s:g} s)")
    return out


def rebooted_fast(events: list[Event], o: Observed, p: Params) -> Findings:
    took = fault_took_effect(events, FAULT, never="the guest's kernel was never crashed",
                             host=p.host, shortfall="the kernel panic did not take")
    if took.inconclusive or o.panic_t is None:
        return took
    out = Findings()
    if o.console_boot is None:
        out.inconclusive.append("the reboot was not confirmed: no second boot banner on the "
                                "console after the panic")
    if o.reboot is None:
        out.inconclusive.append("the reboot was not confirmed: no new boot id after the panic "
                                "(neither the heartbeat nor the console's ready line)")
    if o.up_t is not None and o.up_t - o.panic_t > p.max_alert_s:
        out.inconclusive.append(
            f"the guest was down {o.up_t - o.panic_t:.1f} s, longer than max_alert_s "
            f"({p.max_alert_s:g} s): not the fast reboot this incident is about")
    return out


def _longest(ts: list[float]) -> float:
    return max((b - a for a, b in pairwise(sorted(ts))), default=0.0)


def _starved(o: Observed, p: Params, deadline: float) -> str:
    """Why the observer could have missed a firing after the panic ("" when it could not)."""
    assert o.panic_t is not None
    window = [e for e in o.monitor if o.panic_t <= e.t <= deadline]
    evals = sorted({float(e.get("last_eval")) for e in window if e.get("last_eval") is not None})
    watcher_gap = _longest([o.panic_t, *(e.t for e in window), min(deadline, o.end)])
    eval_gap = _longest(evals)
    if watcher_gap <= p.starved_s and eval_gap <= p.starved_s and len(evals) >= 2:
        return ""
    return (f"the observer was starved after the panic: the alert watcher went "
            f"{watcher_gap:.1f} s without an answer from Prometheus and its rules "
            f"{eval_gap:.1f} s without an evaluation (limit {p.starved_s:g} s), so a firing "
            "could have been missed")


def paged(o: Observed, p: Params) -> Findings:
    if o.panic_t is None:
        return Findings()
    panic_t, deadline = o.panic_t, o.panic_t + p.max_alert_s
    trigger_t = o.trigger_t if o.trigger_t is not None else panic_t
    after = [e for e in o.alerts if e.t > trigger_t]
    fired = next((e for e in after if e.get("state") == "firing"), None)
    pending = next((e for e in after if e.get("state") == "pending"), None)
    each: dict[str, float | None] = {}
    for e in after:  # when each instance (each rule) first fired
        if e.get("state") == "firing":
            each.setdefault(_reason(e), o.since_panic(e.t))
    out = Findings(figures={"alert_after_s": o.since_panic(fired.t if fired else None),
                            "alert_labels": _labels(fired) if fired else None,
                            "fired_after_s": each,
                            "pending_after_s": o.since_panic(pending.t if pending else None)})
    since = fired.get("active_since") if fired else None
    if fired is not None and since is not None and since < trigger_t - ACTIVE_SLACK_S:
        out.failures.append(
            f"{p.alert} fired {fired.t - panic_t:.1f} s after the panic ({_labels(fired)}), "
            f"but its expression had held since {trigger_t - since:.1f} s before the crash "
            "was triggered: it fires whether or not the server reboots")
        return out
    if fired is not None and fired.t <= deadline:
        return out
    if o.end < deadline:
        out.inconclusive.append(f"observation ended {o.end - panic_t:.1f} s after the panic, "
                                f"before the {p.max_alert_s:g} s deadline")
    elif o.back_t is None or o.back_t > deadline - p.settle_s:
        out.inconclusive.append(
            f"Prometheus scraped the rebooted guest only {o.after(o.back_t)}: too late for any "
            f"rule to judge it within max_alert_s ({p.max_alert_s:g} s)")
    elif starved := _starved(o, p, deadline):
        out.inconclusive.append(starved)
    else:
        out.failures.append(_blind(o, p, fired, pending))
    return out


def _blind(o: Observed, p: Params, fired: Event | None, pending: Event | None) -> str:
    assert o.panic_t is not None
    when = (f"it fired only {fired.t - o.panic_t:.1f} s after the panic" if fired
            else f"it never fired in the {o.end - o.panic_t:.1f} s observed after the panic")
    seen = ""
    if pending is not None and fired is None:
        cleared = next((e for e in o.alerts if e.t > pending.t and _labels(e) == _labels(pending)
                        and e.get("state") == "inactive"), None)
        seen = (f" (it went pending {pending.t - o.panic_t:+.1f} s from the panic and "
                + (f"cleared {cleared.t - o.panic_t:.1f} s after it, as the node answered "
                   "again)" if cleared else "was still pending)"))
    down = f"{o.up_t - o.panic_t:.1f} s" if o.up_t is not None else "briefly"
    return (f"{p.alert} did not fire within max_alert_s ({p.max_alert_s:g} s) of the kernel "
            f"panic: {when}{seen}. The guest was down {down} and very quickly came back "
            f"'up' (new boot id {o.after(o.reboot.t if o.reboot else None)}); Prometheus "
            f"scraped its new boot {o.after(o.back_t)}: the monitoring was blind to the reboot")


def figures(o: Observed) -> Findings:
    ages = [float(e.get("hb_age")) for e in o.monitor if e.get("hb_age") is not None]
    return Findings(figures={
        "down_s": o.since_panic(o.up_t),
        "console_boot_after_s": o.since_panic(o.console_boot.t if o.console_boot else None),
        "new_boot_id_after_s": o.since_panic(o.reboot.t if o.reboot else None),
        "scraped_again_after_s": o.since_panic(o.back_t),
        "server_heartbeat_age_s": round(ages[-1], 1) if ages else None,
        "watcher_rounds": len(o.monitor),
    })


def check(events: list[Event], p: Params) -> Verdict:
    o = observe(events, p)
    return compose(figures(o), quiet(o, p), paged(o, p), rebooted_fast(events, o, p),
                   Findings(figures={"max_alert_s": p.max_alert_s}))
