"""The leader_deadman run: agents on real servers, a real etcd, the leader taken away.

Roles: `etcd` (the coordination store, not under test: repro.harness.services.etcd)
and `srv-0` .. `srv-N-1`, each running the configuration's `agent` as root in the
foreground with ETCDCTL_API=3, ETCDCTL_ENDPOINTS, SERVER_ID (its role) and
DECISION_INTERVAL_S. Steps, each a `phase` event in the history:

1. the harness watches `/repro/decisions/` through etcd's own watch (from revision 1):
   every PUT is one `mark` event (panel "decisions", name "decision") of the server
   that wrote it; a TCP probe of every server is the observer's pulse;
2. the agents start; the first decision must come within `elect_timeout_s`;
3. `control`: `control_s` without any fault (one decider, no leadership change);
4. `fault`: the leader (the server deciding last) is killed, paused or cut off from etcd
   and the other servers (repro.harness.faults: kill, pause, partition) for `fault_s`
   (max_takeover_s plus three intervals), then healed;
5. `after`: `after_s` more: still one decider.

check.py judges the decisions against the windows; it never reads the agent.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence

from repro.harness.checks import Outcome, run_checker
from repro.harness.envelope import envelope
from repro.harness.errors import HostCommandError
from repro.harness.faults.base import Fault, injected
from repro.harness.faults.kill import KillHost
from repro.harness.faults.partition import Partition
from repro.harness.faults.pause import PauseHost
from repro.harness.history import History
from repro.harness.hosts import open_hosts
from repro.harness.hosts.base import Host
from repro.harness.probes.tcp import TcpProbe
from repro.harness.procs import eventually
from repro.harness.report.results import IncidentResult
from repro.harness.run import Run
from repro.harness.services.etcd import EtcdServer, Watch

from . import check
from .config import LeaderDeadmanConfig

INCIDENT = "leader_deadman"
AGENT = "/usr/local/bin/repro-agent"
AGENT_LOG = "/var/log/repro-agent.log"
DECISIONS = "/repro/decisions/"
CMD_TIMEOUT_S = 10.0


def server_roles(n: int) -> list[str]:
    return [f"srv-{i}" for i in range(n)]


def run(run_ctx: Run, cfg: LeaderDeadmanConfig, label: str, expect: Outcome = Outcome.PASS
        ) -> IncidentResult:
    servers = server_roles(cfg.servers)
    with envelope(run_ctx, INCIDENT, label, cfg.agent, cfg.provider, expect) as env, \
            open_hosts(cfg.provider, run_ctx, ["etcd", *servers]) as hosts, \
            EtcdServer(hosts["etcd"], run_ctx) as etcd:
        history = env.history
        env.target = ",".join(hosts[s].name for s in servers)

        def decided(key: str, value: str, revision: int) -> None:
            history.append("mark", key.removeprefix(DECISIONS), panel="decisions",
                           name="decision", revision=revision)

        with Watch(etcd.endpoint, DECISIONS, decided, run_ctx.name("watch")), \
                TcpProbe(history, [(s, hosts[s].address, 22) for s in servers]):
            _start_agents([hosts[s] for s in servers], etcd.endpoint, cfg, history)
            if eventually(lambda: _decisions(history), timeout=cfg.elect_timeout_s):
                _control_fault_after(run_ctx, hosts, servers, cfg, history)
            _stop_agents([hosts[s] for s in servers])
            history.append("phase", "", name="end")
        params = check.Params(servers=tuple(servers), interval_s=cfg.decision_interval_s,
                              max_takeover_s=cfg.max_takeover_s, fault=cfg.fault)
        return env.result(run_checker(check.check, history.events(), params))


def _start_agents(servers: Sequence[Host], endpoint: str, cfg: LeaderDeadmanConfig,
                  history: History) -> None:
    agent = cfg.agent.read_bytes()
    for h in servers:
        h.put(agent, AGENT, 0o755)
        env = {"ETCDCTL_API": "3", "ETCDCTL_ENDPOINTS": endpoint, "SERVER_ID": h.role,
               "DECISION_INTERVAL_S": f"{cfg.decision_interval_s:g}"}
        res = h.run(f"setsid {AGENT} > {AGENT_LOG} 2>&1 < /dev/null & echo $!",
                    timeout=CMD_TIMEOUT_S, check=False, env=env)
        history.append("host", h.role, event="agent started", pid=res.stdout.strip())
    history.append("phase", "", name="agents")


def _decisions(history: History) -> list[str]:
    return [e.host for e in history.events() if e.kind == "mark" and e.get("name") == "decision"]


def _control_fault_after(run_ctx: Run, hosts: dict[str, Host], servers: list[str],
                         cfg: LeaderDeadmanConfig, history: History) -> None:
    history.append("phase", "", name="control")
    time.sleep(cfg.control_s)  # the fault-free observation window
    leader = _decisions(history)[-1]
    history.append("phase", leader, name="fault")
    with injected(_fault(run_ctx, cfg.fault, hosts, leader, servers, history), history):
        time.sleep(cfg.fault_s)  # the fault's observation window
    history.append("phase", "", name="after")
    time.sleep(cfg.after_s)  # the observation window after healing


def _fault(run_ctx: Run, name: str, hosts: dict[str, Host], leader: str,
           servers: list[str], history: History) -> Fault:
    if name == "kill":
        return KillHost(hosts[leader], history.now)
    if name == "pause":
        return PauseHost(hosts[leader], history.now)
    rest = [hosts["etcd"], *(hosts[s] for s in servers if s != leader)]
    return Partition(run_ctx, [hosts[leader]], rest, clock=history.now)


def _stop_agents(servers: Sequence[Host]) -> None:
    for h in servers:
        with contextlib.suppress(HostCommandError):  # a killed host has nothing to stop
            h.run(f"pkill -KILL -f {AGENT}; true", timeout=CMD_TIMEOUT_S, check=False)
