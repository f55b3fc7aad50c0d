"""The reboot_blindspot oracle: does the named alert tell the truth about a rebooted server?

Pure functions of the history (repro.reboot_blindspot.observed: the evidence, all from
outside the guest, and the judged rounds). The rule file under test is never read, nor its
`for:`: a fixed configuration is one whose alert is firing when the server is broken.

The truth under judgement. After the panic the guest reboots by itself and answers again,
but its server process is gone (nothing starts it at boot, and the harness never does).
From the moment Prometheus has scraped the node on its new boot (`back_t`: `up == 1` and a
new `node_boot_time_seconds`) the state is "the host is up, the server is absent", and it
lasts as long as the harness observes: a *judged round* is a watcher round in that state
(`up == 1`, the server heartbeat absent or older than it ever was while the server ran)
whose rules were last evaluated more than an evaluation interval after `back_t`, so the
alert's state there is the rules' answer to the up-again node, not a leftover of the
outage. The alert must be firing in a judged
round within `max_alert_s` of `back_t`. The deadline counts from `back_t`, not from the
panic: a reboot's length (12-30 s under TCG, more under load) never eats the time a rule's
own `for:` needs, so no rule's `for:` has to be known. An alert that only covered the
outage (`up == 0` for 10 s on a reboot longer than that) resolves at the first evaluation
of the up-again node: flagged, however long the reboot was.

Composed, failures first:
  1. quiet: the alert was firing during the control window (from the first round in
     which Prometheus had scraped the node and its server heartbeat, plus `settle_s` for
     the rules to see it, to the moment the crash trigger was sent: its ssh command alone
     can make a TCG guest miss a scrape). A pending alert there is not a failure (a scrape
     missed under load makes `up == 0` pending for a second). A window in which Prometheus
     could not scrape the node for over `starved_s` proves nothing: inconclusive.
  2. given the crash took and the reboot is confirmed (fault first, then judgement):
     paged: firing in a judged round by the deadline passes, unless that instance had been
     active since before the trigger (a rule that fires whether or not the server reboots:
     fail). Not firing is the incident (fail), but only when the run could have seen it
     fire: observation reached the deadline, the up-again-server-absent state lasted until
     it, and neither the alert watcher nor Prometheus's evaluator was starved after
     `back_t` (each missing is inconclusive: a stalled observer is not a blind rule).
     Prometheus never scraping the rebooted node is inconclusive.
Inconclusive, when nothing failed, if: the crash never happened or did not take; the
reboot was not confirmed by both a second boot banner on the console and a new boot id;
the control window was shorter than `quiet_s` or never began.
"""

from __future__ import annotations

from itertools import pairwise

from repro.harness.checks import Verdict, liveness_gaps
from repro.harness.history import Event
from repro.harness.rules import Findings, compose, fault_took_effect, given, inconclusive
from repro.reboot_blindspot.observed import (
    ACTIVE_SLACK_S,
    FAULT,
    TRIGGER,
    Observed,
    Params,
    firing_at,
    labels_of,
    observe,
    reason_of,
)

__all__ = ["FAULT", "TRIGGER", "Observed", "Params", "check", "firing_at", "observe"]


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
    held = {labels_of(e): e for e in in_window if e.t <= settled}  # the states at `settled`
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
                         f"nothing wrong ({labels_of(e)}; firing since {end - e.t:.1f} s before "
                         "the crash trigger): a rule that fires without a reboot proves nothing"
                         for e in fired[:1]]
    if end - o.quiet_t < p.quiet_s - 0.5:
        out.inconclusive.append(f"the quiet control window lasted {end - o.quiet_t:.1f} s, "
                                f"less than quiet_s ({p.quiet_s:g} s)")
    return out


def rebooted(events: list[Event], o: Observed, p: Params) -> Findings:
    """The fault took: the kernel panicked and the guest came back on a new boot (the
    console's banner and a new boot id), however long that took."""
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
    return out


def _longest(ts: list[float]) -> float:
    return max((b - a for a, b in pairwise(sorted(ts))), default=0.0)


def _starved(o: Observed, p: Params, start: float, deadline: float) -> str:
    """Why the observer could have missed a firing in [start, deadline] ("" when it could
    not have)."""
    window = [e for e in o.monitor if start <= e.t <= deadline]
    evals = sorted({float(e.get("last_eval")) for e in window
                    if e.get("last_eval") is not None and float(e.get("last_eval")) > start})
    watcher_gap = _longest([start, *(e.t for e in window), min(deadline, o.end)])
    eval_gap = _longest([start, *evals])
    if watcher_gap <= p.starved_s and eval_gap <= p.starved_s and len(evals) >= 2:
        return ""
    return (f"the observer was starved after Prometheus scraped the rebooted node: the alert "
            f"watcher went {watcher_gap:.1f} s without an answer from Prometheus and its rules "
            f"{eval_gap:.1f} s without an evaluation (limit {p.starved_s:g} s), so a firing "
            "could have been missed")


def paged(o: Observed, p: Params) -> Findings:
    """Firing in a judged round within `max_alert_s` of `back_t` (see the module's model)."""
    if o.panic_t is None:
        return Findings()
    trigger_t = o.trigger_t if o.trigger_t is not None else o.panic_t
    judged = o.judged(p)
    deadline = o.back_t + p.max_alert_s if o.back_t is not None else None
    hit = next(((e, f[0]) for e in judged if deadline is not None and e.t <= deadline
                and (f := firing_at(o.alerts, e.t))), None)
    out = Findings(figures=_alert_figures(o, p, trigger_t, judged, hit))
    if hit is not None:
        since = hit[1].get("active_since")
        if since is not None and since < trigger_t - ACTIVE_SLACK_S:
            out.failures.append(
                f"{p.alert} was firing on the rebooted node ({labels_of(hit[1])}), but its "
                f"expression had held since {trigger_t - since:.1f} s before the crash was "
                "triggered: it fires whether or not the server reboots")
        return out
    if o.back_t is None or deadline is None:
        out.inconclusive.append(
            f"Prometheus never scraped the rebooted node on its new boot in the "
            f"{o.end - o.panic_t:.1f} s observed after the panic: nothing to judge the alert "
            "on")
        return out
    out.inconclusive += _could_not_see(o, p, deadline)
    if not out.inconclusive:
        out.failures.append(_blind(o, p, trigger_t))
    return out


def _could_not_see(o: Observed, p: Params, deadline: float) -> list[str]:
    """Why a missing firing proves nothing: observation, the state under judgement or the
    observer ended or stalled before the deadline."""
    assert o.back_t is not None
    if o.end < deadline:
        return [f"observation ended {o.end - o.back_t:.1f} s after Prometheus scraped the "
                f"rebooted node, before the max_alert_s ({p.max_alert_s:g} s) deadline"]
    seen = o.server_seen_t(p)
    if seen is not None and seen <= deadline:
        return [f"the server process's heartbeat was fresh again {seen - o.back_t:.1f} s "
                "after Prometheus scraped the rebooted node: the state under judgement (up, "
                f"server gone) ended before the max_alert_s ({p.max_alert_s:g} s) deadline"]
    starved = _starved(o, p, o.back_t, deadline)
    return [starved] if starved else []


def _alert_figures(o: Observed, p: Params, trigger_t: float, judged: list[Event],
                   hit: tuple[Event, Event] | None) -> dict[str, object]:
    after = [e for e in o.alerts if e.t > trigger_t]
    fired = next((e for e in after if e.get("state") == "firing"), None)
    pending = next((e for e in after if e.get("state") == "pending"), None)
    each: dict[str, float | None] = {}
    for e in after:  # when each instance (each rule) first fired
        if e.get("state") == "firing":
            each.setdefault(reason_of(e), o.since_panic(e.t))
    back = o.back_t
    return {"alert_after_s": o.since_panic(hit[1].t if hit else None),
            "paged_after_back_s": round(hit[1].t - back, 1) if hit and back else None,
            "alert_labels": labels_of(hit[1]) if hit else None,
            "first_fired_after_s": o.since_panic(fired.t if fired else None),
            "fired_after_s": each,
            "pending_after_s": o.since_panic(pending.t if pending else None),
            "judged_window_s": round(judged[-1].t - back, 1) if judged and back else None}


def _story(o: Observed, p: Params, trigger_t: float) -> str:
    """What the alert did after the trigger, as the watcher saw it."""
    assert o.panic_t is not None and o.back_t is not None
    after = [e for e in o.alerts if e.t > trigger_t]
    fired = next((e for e in after if e.get("state") == "firing"), None)
    shown = fired or next((e for e in after if e.get("state") == "pending"), None)
    if shown is None:
        return f"it never fired in the {o.end - o.panic_t:.1f} s observed after the panic"
    if fired is not None and fired.t > o.back_t + p.max_alert_s:
        return (f"it fired only {fired.t - o.back_t:.1f} s after Prometheus scraped the "
                f"rebooted node ({fired.t - o.panic_t:.1f} s after the panic)")
    cleared = next((e for e in after if e.t > shown.t and labels_of(e) == labels_of(shown)
                    and e.get("state") == "inactive"), None)
    said = (f"it {'fired' if fired else 'went pending'} {shown.t - o.panic_t:.1f} s after the "
            f"panic ({labels_of(shown)})")
    if cleared is None:
        return said + " but was not firing in a judged round"
    said += f" and cleared {cleared.t - o.back_t:+.1f} s from Prometheus scraping the new boot"
    return said + (", an alert that covered only the outage" if fired is not None else "")


def _blind(o: Observed, p: Params, trigger_t: float) -> str:
    assert o.panic_t is not None and o.back_t is not None
    down = f"{o.up_t - o.panic_t:.1f} s" if o.up_t is not None else "briefly"
    return (f"{p.alert} did not page on the rebooted node: it was not firing while the node "
            f"answered again on its new boot with its server process gone, in the "
            f"{p.max_alert_s:g} s (max_alert_s) after Prometheus scraped that new boot "
            f"({o.after(o.back_t)}); {_story(o, p, trigger_t)}. The guest was down {down} and "
            f"came back 'up' (new boot id {o.after(o.reboot.t if o.reboot else None)}), its "
            "server process still gone: the monitoring was blind to the reboot")


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
    return compose(figures(o), quiet(o, p), given(rebooted(events, o, p), paged(o, p)),
                   Findings(figures={"max_alert_s": p.max_alert_s}))
