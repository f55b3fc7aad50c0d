"""The mtu_wedge run: provision, apply host init, flood, observe, judge.

Roles: `target` (the build server under test) and `client` (the source of
the flood). The observer is the runner itself: outside the target and
outside the flood's connections. Steps:

1. start both hosts; run the configuration's `host_init` on each (as root);
2. record what the hosts look like afterwards (MTU, confirmed by DF probes);
3. heartbeat the target until it has a baseline of healthy samples;
4. log the flood's N streams in (paced per stream where the backend's CPU would
   otherwise set the pace: STREAM_RATE_MBIT), release them together, sample their
   byte counters for `duration_s`, stop them (heal);
5. keep observing for a short settle time, then judge the history.
"""

from __future__ import annotations

import time

from repro.harness.checks import Outcome, Verdict, run_checker
from repro.harness.envelope import envelope
from repro.harness.errors import HostCommandError
from repro.harness.faults.base import injected
from repro.harness.faults.mtu import df_probe, read_mtu
from repro.harness.faults.ssh_flood import SshFlood
from repro.harness.history import History
from repro.harness.hosts import open_hosts
from repro.harness.hosts.base import Host
from repro.harness.probes.heartbeat import Heartbeat, wait_baseline
from repro.harness.report.results import IncidentResult
from repro.harness.run import Run
from repro.harness.workloads.hostinit import apply_host_init
from repro.mtu_wedge import check
from repro.mtu_wedge.config import MtuWedgeConfig

INCIDENT = "mtu_wedge"
SAMPLE_EVERY_S = 0.5
# Observation after the flood: a host that vanished stays gone past max_gap_s, sessions
# frozen in the flood's last seconds answer again.
SETTLE_S = 6.5
# Each stream's pace by backend (Mbit/s; absent: unpaced). On a 1-vCPU TCG guest 20 unpaced
# streams took the CPU (109-176 MB in 8 s): the heartbeat's session, served by the same
# sshd, then froze for up to 14 s on a loaded runner, i.e. it measured the flood, not the
# host. Paced at 2 Mbit/s (20 streams: 5 MB/s, about a third of that), the fixed guest's
# sessions stay responsive, each stream still moves about 2 MB in 8 s (over MIN_MOVED_BYTES
# and over the pre-fix fixture's 1 MB per session), and no backend needs an excuse for a
# session frozen during the flood.
STREAM_RATE_MBIT = {"qemu": 2.0}


def run(run_ctx: Run, cfg: MtuWedgeConfig, label: str, expect: Outcome = Outcome.PASS
        ) -> IncidentResult:
    with envelope(run_ctx, INCIDENT, label, cfg.host_init, cfg.provider, expect) as env, \
            open_hosts(cfg.provider, run_ctx, ["target", "client"]) as hosts:
        target, client = hosts["target"], hosts["client"]
        env.target = target.name
        env.history.append("host", target.name, event="ready", url=target.url())
        init_failure = apply_host_init(hosts.values(), cfg.host_init, env.history)
        if init_failure:
            return env.result(Verdict(Outcome.FAIL, (init_failure,), {}))
        _observe_network(target, client, env.history)
        return env.result(_flood_and_observe(run_ctx, cfg, target, client, env.history))


def _observe_network(target: Host, client: Host, history: History) -> None:
    """Record the MTU each host ended up with, confirmed on the wire with DF probes."""
    for host, peer in ((target, client), (client, target)):
        try:
            mtu = read_mtu(host)
            probe = df_probe(host, peer.address, mtu)
            history.append("observe", host.name, mtu=mtu, df_confirmed=probe.confirms)
        except HostCommandError as exc:
            history.append("note", host.name, text=f"could not read MTU: {exc}")


def _flood_and_observe(run_ctx: Run, cfg: MtuWedgeConfig, target: Host, client: Host,
                       history: History) -> Verdict:
    params = check.Params(target=target.name, streams=cfg.streams, duration_s=cfg.duration_s,
                          max_gap_s=cfg.max_gap_s)
    heartbeat = Heartbeat(history, target.name, target.address, run_ctx.key.private_path,
                          interval_s=cfg.heartbeat_interval_s)
    with heartbeat:
        if not wait_baseline(history, target.name):
            return Verdict(Outcome.INCONCLUSIVE,
                           (f"no healthy heartbeat from {target.name} before the flood",), {})
        flood = SshFlood(client=client, target=target, streams=cfg.streams, history=history,
                         rate_mbit=STREAM_RATE_MBIT.get(cfg.provider, 0.0))
        with injected(flood, history):
            end = time.monotonic() + cfg.duration_s
            while time.monotonic() < end:
                flood.sample()
                # sampling cadence, not synchronisation
                time.sleep(min(SAMPLE_EVERY_S, max(0.0, end - time.monotonic())))
            flood.sample()
        time.sleep(SETTLE_S)  # observation window after the flood, not synchronisation
    return run_checker(check.check, history.events(), params)
