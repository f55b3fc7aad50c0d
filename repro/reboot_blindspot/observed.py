"""What the reboot_blindspot oracle reads of a history, and the state it judges the alert in.

Pure functions of the history. Evidence, all from outside the guest:
  - the serial console (repro.harness.probes.kernel_log): the `panic` finding (the
    moment of the crash) and a second boot banner (`host` event "boot");
  - the boot-id heartbeat (`probe`): a new boot id (or the one the guest's init prints
    on the console's ready line, if that came first), and when port 22 answered again;
  - the sysrq_crash fault window (`fault.start`, with its shortfall);
  - what Prometheus said (repro.harness.probes.alerts): `monitor` rounds (the node
    exporter's `up`, `boot_time`, the server heartbeat's age `hb_age`, the rules' last
    evaluation) and `alert` state changes of every instance of the named alert, with
    `active_since` (when its expression began to hold, without a break).
The rule file under test is never read, nor its `for:`: a fixed configuration is one whose
alert is firing when the truth is "this server is broken".

`Observed.judged` gives the rounds the alert is judged in (the host answering again on its
new boot with its server process absent; see repro.reboot_blindspot.check), `firing_at`
an alert's instances firing at a moment.
"""

from __future__ import annotations

from dataclasses import dataclass

from repro.harness.checks import Reboot, reboots
from repro.harness.history import Event, of_kind
from repro.harness.probes.heartbeat import leg

FAULT = "sysrq_crash"
TRIGGER = "crash_trigger"  # the `op` the scenario records as it sends the crash trigger
ACTIVE_SLACK_S = 0.5  # Prometheus's activeAt (its evaluation's time) against the trigger


@dataclass(frozen=True)
class Params:
    host: str
    alert: str
    max_alert_s: float  # firing within this many seconds of `back_t` (the node scraped again)
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
    fresh_s: float                # the server heartbeat's oldest age while the server ran
    end: float                    # the last answered watcher round

    def after(self, t: float | None) -> str:
        if t is None or self.panic_t is None:
            return "never"
        return f"{t - self.panic_t:.1f} s after the panic"

    def since_panic(self, t: float | None) -> float | None:
        return None if t is None or self.panic_t is None else round(t - self.panic_t, 1)

    def server_absent(self, e: Event, p: Params) -> bool:
        """Prometheus has no server heartbeat, or one older than it ever was while the
        server ran (its usual age, the guest's clock offset in it, and two scrapes)."""
        age = e.get("hb_age")
        return age is None or float(age) > self.fresh_s + 2 * p.scrape_interval_s

    def judged(self, p: Params) -> list[Event]:
        """The rounds in which the host answered again on its new boot with its server
        process absent, the rules evaluated at least an evaluation interval after the
        watcher first saw Prometheus have that new boot (an evaluation's time can precede
        its start by a little: one interval more and it has surely seen the sample)."""
        if self.back_t is None:
            return []
        back = self.back_t
        return [e for e in self.monitor if e.t >= back and e.get("up") == 1
                and e.get("last_eval") is not None
                and float(e.get("last_eval")) > back + p.evaluation_interval_s
                and self.server_absent(e, p)]

    def server_seen_t(self, p: Params) -> float | None:
        """The first round after `back_t` with a fresh server heartbeat (the state under
        judgement ended: nothing in this scenario restarts the server, but the oracle does
        not assume it)."""
        if self.back_t is None:
            return None
        return next((e.t for e in self.monitor if e.t >= self.back_t and e.get("up") == 1
                     and not self.server_absent(e, p)), None)


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
    ran = [float(e.get("hb_age")) for e in monitor if e.get("hb_age") is not None
           and quiet_t is not None and quiet_t <= e.t and (trigger_t is None or e.t < trigger_t)]
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
                    back_t, max(ran, default=0.0), end)


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


def labels_of(e: Event) -> str:
    labels = {k: v for k, v in dict(e.get("labels") or {}).items() if k != "alertname"}
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "(no labels)"


def reason_of(e: Event) -> str:
    """An instance's `reason` label (the shipped rules name theirs), else its labels."""
    return str(dict(e.get("labels") or {}).get("reason") or labels_of(e))


def firing_at(alerts: list[Event], t: float) -> list[Event]:
    """The instances firing at `t`: each one's latest state change up to then."""
    state: dict[str, Event] = {}
    for e in alerts:
        if e.t <= t:
            state[labels_of(e)] = e
    return [e for e in state.values() if e.get("state") == "firing"]
