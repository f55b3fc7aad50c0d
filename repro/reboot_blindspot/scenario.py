"""The reboot_blindspot run: a monitored guest panics and reboots fast; does the alert page?

One QEMU guest per direction (its own Debian kernel, `panic=1`: it reboots a second
after a panic, as the postmortem's servers did) and, on the runner, a Prometheus loading
the rule file under test and scraping the guest's node exporter as job `node` over the
run's guest network every `scrape_interval_s`. Observers on the runner for the whole run:
the kernel-log watcher on the serial console, the boot-id heartbeat, and the alert watcher
polling Prometheus's API (repro.harness.probes.alerts). Steps:

1. boot the guest; start Prometheus on the rules (it picks up its target ~5 s later);
   meanwhile install the node exporter as a boot service on the guest and start the
   server process once (repro.reboot_blindspot.guest);
2. wait until Prometheus has scraped the node and the server heartbeat: the quiet
   control window begins, and lasts `quiet_s`;
3. panic the kernel (sysrq_crash: a real panic; the kernel reboots itself);
4. observe until the alert was firing on the up-again node (scraped on its new boot, its
   server process gone) and the reboot is confirmed, or until `max_alert_s` after
   Prometheus scraped the new boot (and a watcher round); the guest comes back by itself,
   the server process does not, so that state lasts as long as the harness observes. A
   node not scraped again within `REBOOT_WAIT_S` of the panic ends observation there.
The verdict is check.check(history).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from repro.harness import procs
from repro.harness.checks import Outcome, Verdict, reboots, run_checker
from repro.harness.envelope import envelope, one_guest, slug
from repro.harness.errors import HostCommandError
from repro.harness.faults.base import injected
from repro.harness.faults.sysrq_crash import SysrqCrash
from repro.harness.history import History, of_kind
from repro.harness.hosts.qemu import QemuHost
from repro.harness.probes.alerts import AlertWatcher, Query
from repro.harness.probes.heartbeat import Heartbeat
from repro.harness.probes.kernel_log import KernelLogWatcher
from repro.harness.report.results import IncidentResult
from repro.harness.run import Run
from repro.harness.services.prometheus import Job, prometheus_server
from repro.reboot_blindspot import check, guest, observed
from repro.reboot_blindspot.config import RebootBlindspotConfig
from repro.reboot_blindspot.observed import TRIGGER

INCIDENT = "reboot_blindspot"
WATCH_INTERVAL_S = 0.5
HEALTHY_TIMEOUT_S = 60.0
# how long after the panic the rebooted node may take to be scraped again before observation
# gives up (inconclusive): 8-30 s measured under TCG, 2-3x that with other runs' guests
REBOOT_WAIT_S = 120.0
# the heartbeat's ssh leg logs in afresh after the reboot: a TCG guest finishing its boot
# took 2.0 s for that login (the default 2 s timeout at a 0.5 s interval missed it for 13 s)
SSH_TIMEOUT_S = 5.0
QUERIES = (  # what the checker reads of Prometheus each round (`monitor` fields)
    Query("up", 'up{job="node"}'),
    Query("boot_time", 'node_boot_time_seconds{job="node"}'),
    Query("hb_age", f'time() - {guest.HEARTBEAT_METRIC}{{job="node"}}', panel="heartbeat",
          unit="s", title="server heartbeat age (Prometheus)"),
)


def role_for(label: str) -> str:
    return "rb-" + slug(label)[:16]


def run(run_ctx: Run, cfg: RebootBlindspotConfig, label: str, expect: Outcome = Outcome.PASS
        ) -> IncidentResult:
    role = role_for(label)
    params = observed.Params(host=run_ctx.name(role), alert=cfg.alert, max_alert_s=cfg.max_alert_s,
                          quiet_s=cfg.quiet_s, evaluation_interval_s=cfg.evaluation_interval_s,
                          scrape_interval_s=cfg.scrape_interval_s)
    with envelope(run_ctx, INCIDENT, label, cfg.rules, "qemu", expect) as env, \
            one_guest(env, run_ctx, role) as host:
        log = env.outdir / "prometheus.log"
        env.artefacts["prometheus_log"] = log
        with KernelLogWatcher(env.history, host), \
                Heartbeat(env.history, host.name, host.address, run_ctx.key.private_path,
                          interval_s=cfg.heartbeat_interval_s, ssh_timeout_s=SSH_TIMEOUT_S):
            verdict = _monitored(run_ctx, cfg, host, env.history, params, log)
        _reboot_marks(env.history, params)
        return env.result(verdict)


def _monitored(run_ctx: Run, cfg: RebootBlindspotConfig, host: QemuHost, history: History,
               params: observed.Params, log: Path) -> Verdict:
    job = Job("node", (f"{host.address}:{guest.PORT}",), (("host", host.name),))
    with prometheus_server(run_ctx.scratch, host.vm.role, [job], cfg.rules,
                           scrape_interval_s=cfg.scrape_interval_s,
                           evaluation_interval_s=cfg.evaluation_interval_s,
                           keep_log=log) as prom, \
            AlertWatcher(history, prom, host.name, QUERIES, WATCH_INTERVAL_S):
        history.append("op", host.name, name="prometheus", ok=True, url=prom.url)
        # Prometheus scrapes its targets only ~5 s after it starts (its discovery manager
        # sends updates at most every 5 s): the guest is provisioned meanwhile
        try:
            pid = guest.provision(host, host.address)
        except (HostCommandError, TimeoutError) as exc:  # a starved guest: nothing judged yet
            history.append("op", host.name, name="provision", ok=False, detail=str(exc)[-300:])
            return Verdict(Outcome.INCONCLUSIVE, (
                f"the guest was not provisioned (node exporter, server process): {exc}"[:400],),
                {})
        history.append("op", host.name, name="provision", ok=True, exporter_port=guest.PORT,
                       server_pid=pid)
        if not procs.eventually(lambda: _healthy(history, host.name), timeout=HEALTHY_TIMEOUT_S):
            return Verdict(Outcome.INCONCLUSIVE, (
                f"Prometheus never scraped the node exporter and the server heartbeat of "
                f"{host.name} within {HEALTHY_TIMEOUT_S:.0f} s",), {})
        time.sleep(cfg.quiet_s)  # the quiet control window: an observation window, not a sync
        crash = SysrqCrash(host)
        # the trigger's own ssh command loads a TCG guest for a second or two before the
        # kernel dies (a scrape can time out then): the control window ends here
        history.append("op", host.name, name=TRIGGER)
        with injected(crash, history) as applied:
            if applied.effective:
                # until the deadline counted from Prometheus scraping the new boot, with the
                # panic's time as the console showed it (under load the trigger's ssh
                # command alone can take seconds to run)
                panic_t = _panic_t(history, host.name)
                with contextlib.suppress(TimeoutError):  # the deadline: judged, not an error
                    procs.wait_for(lambda: _observed_enough(history, params, panic_t),
                                   timeout=REBOOT_WAIT_S + cfg.max_alert_s + params.settle_s,
                                   interval=WATCH_INTERVAL_S)
                time.sleep(2 * WATCH_INTERVAL_S)  # a last look at the alert: observation
    return run_checker(check.check, history.events(), params)


def _healthy(history: History, host: str) -> bool:
    return any(e.get("up") == 1 and e.get("hb_age") is not None
               for e in of_kind(history.events(), "monitor") if e.host == host)


def _panic_t(history: History, host: str) -> float:
    """When the console showed the panic (the watcher has read it by now, or does at once)."""
    def seen() -> float | None:
        return next((e.t for e in of_kind(history.events(), "kernel")
                     if e.host == host and e.get("pattern") == "panic"), None)

    procs.eventually(seen, timeout=2.0)
    t = seen()
    return t if t is not None else history.now()


def _observed_enough(history: History, params: observed.Params, panic_t: float) -> bool:
    """The alert is firing on the up-again node with its server gone and the reboot is
    confirmed (a new boot id and the console's banner), or the checker's deadline
    (`max_alert_s` after Prometheus scraped the new boot) has passed by a watcher round,
    or the node was not scraped again within REBOOT_WAIT_S of the panic."""
    events = history.events()
    o = observed.observe(events, params)
    now = history.now()
    if o.back_t is None:
        return now > panic_t + REBOOT_WAIT_S
    if now > o.back_t + params.max_alert_s + WATCH_INTERVAL_S:
        return True
    judged = o.judged(params)
    return o.reboot is not None and o.console_boot is not None and any(
        observed.firing_at(o.alerts, e.t) for e in judged if e.t <= o.back_t + params.max_alert_s)


def _reboot_marks(history: History, params: observed.Params) -> None:
    """The reboot's milestones as marks of the `reboot` panel (drawing only: the checker
    reads the events they come from)."""
    o = observed.observe(history.events(), params)
    if o.panic_t is None:
        return
    mine = [e for e in history.events() if e.host == params.host and e.t > o.panic_t]
    marks = [(o.panic_t, "panic (console)"),
             *((e.t, "boot banner (console)") for e in of_kind(mine, "host")
               if e.get("event") == "boot"),
             *((e.t, "new boot id (console)") for e in of_kind(mine, "host")
               if e.get("event") == "guest_ready"),
             *((r.t, "new boot id (heartbeat)") for r in reboots(of_kind(mine, "probe"))),
             *([(o.up_t, "port 22 answers again")] if o.up_t is not None else []),
             *([(o.back_t, "Prometheus scrapes the new boot")] if o.back_t is not None else [])]
    for t, name in sorted(marks):
        history.append("mark", params.host, t=t, panel="reboot", name=name)
