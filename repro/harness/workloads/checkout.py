"""The build's checkout step, run on a build host and watched from outside.

Model: the configuration under test names a script (the "configure the
build" step). It runs on the build host with the environment
`REPO_URL`, `BRANCH`, `COMMIT`, `WORKDIR` and must leave `WORKDIR` at
`COMMIT`. `CheckoutStep` copies the script and repro/harness/workloads/checkout_agent.py to
the host and drives the agent:

- `start()` launches the step in the background in its own process group
  (`pgid`), every process of it marked with REPRO_STEP=<id> in its
  environment;
- `status()` says whether it is still running, its exit code and run time
  (measured on the host) and which marked processes are alive, also those
  that left the process group;
- `cancel()` is what a user's cancel does: SIGTERM to the process group;
  the agent then times, on the host, how long until every marked process is
  gone (a slow guest or ssh round trip does not inflate it);
- `run(timeout)` runs it in the foreground (property tests: many short runs);
- `head()` reads the commit WORKDIR is at; `cleanup()` SIGKILLs whatever is
  left and removes WORKDIR and the agent's state (idempotent).
"""

from __future__ import annotations

import ast
import contextlib
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repro.harness.errors import HostCommandError
from repro.harness.hosts.base import Host
from repro.harness.run import Run

AGENT = Path(__file__).resolve().parent / "checkout_agent.py"
CMD_TIMEOUT_S = 60.0  # generous: a TCG guest on a busy machine stalls for tens of seconds


@dataclass(frozen=True)
class StepEnv:
    repo_url: str
    branch: str
    commit: str

    def pairs(self, workdir: str) -> list[str]:
        return [f"REPO_URL={self.repo_url}", f"BRANCH={self.branch}", f"COMMIT={self.commit}",
                f"WORKDIR={workdir}"]


@dataclass(frozen=True)
class Proc:
    pid: int
    comm: str
    cmdline: str

    @property
    def is_git(self) -> bool:
        return self.comm.startswith("git")


@dataclass(frozen=True)
class StepStatus:
    ended: bool
    exit_code: int | None
    elapsed_s: float | None
    processes: tuple[Proc, ...]   # marked processes still alive (the wrapper excluded)

    @property
    def git_children(self) -> tuple[Proc, ...]:
        return tuple(p for p in self.processes if p.is_git)


@dataclass(frozen=True)
class CancelOutcome:
    ended_after_s: float | None     # None: something was still alive when the watch ended
    survivors: tuple[Proc, ...]


class CheckoutStep:
    def __init__(self, host: Host, run: Run, script: Path, env: StepEnv, label: str,
                 extra: dict[str, str] | None = None):
        self.host = host
        self.script_path = script
        self.env = env
        self.extra = [f"{k}={v}" for k, v in (extra or {}).items()]
        self.id = run.name("step", label)
        base = f"/tmp/{self.id}"
        self.state = f"{base}-state"
        self.workdir = f"{base}-work"
        self.remote_script = f"{base}-checkout"
        self.agent = f"/tmp/{run.name('checkout-agent.py')}"
        self.pgid: int | None = None
        self._installed = False

    def _install(self) -> None:
        if self._installed:
            return
        self.host.put(AGENT.read_bytes(), self.agent, 0o755)
        self.host.put(self.script_path.read_bytes(), self.remote_script, 0o755)
        self.host.run(f"rm -rf {self.workdir} {self.state}", timeout=CMD_TIMEOUT_S)
        self._installed = True

    def _agent(self, *args: str, timeout: float = CMD_TIMEOUT_S) -> str:
        cmd = " ".join(shlex.quote(a) for a in ("python3", self.agent, *args))
        return self.host.run(cmd, timeout=timeout).stdout.strip()

    def start(self) -> None:
        self._install()
        out = self._agent("start", self.state, self.remote_script, self.id,
                          *self.env.pairs(self.workdir), *self.extra)
        self.pgid = int(out.split()[-1])

    def run(self, timeout: float) -> StepStatus:
        """Run to the end in the foreground; a step still running at `timeout` is killed."""
        self._install()
        out = self._agent("wait", self.state, self.remote_script, self.id, f"{timeout:.3f}",
                          *self.env.pairs(self.workdir), *self.extra,
                          timeout=timeout + CMD_TIMEOUT_S)
        return _status(ast.literal_eval(out.splitlines()[-1]))

    def status(self) -> StepStatus:
        return _status(ast.literal_eval(self._agent("status", self.state, self.id)
                                        .splitlines()[-1]))

    def cancel(self, watch_s: float) -> CancelOutcome:
        """SIGTERM to the process group; the host times how long until every marked process
        (the wrapper aside) is gone, watching at most `watch_s`."""
        if self.pgid is None:
            raise HostCommandError(self.host.name, "cancel", None, "the step was never started")
        raw = ast.literal_eval(self._agent("cancel", self.state, str(self.pgid), self.id,
                                           f"{watch_s:.3f}", timeout=watch_s + CMD_TIMEOUT_S
                                           ).splitlines()[-1])
        return CancelOutcome(raw["ended_after_s"],
                             tuple(Proc(int(p), str(c), str(cmd))
                                   for p, c, cmd in raw["survivors"]))

    def head(self) -> str:
        res = self.host.run(f"git -C {self.workdir} rev-parse --verify -q HEAD",
                            timeout=CMD_TIMEOUT_S, check=False)
        return res.stdout.strip() if res.ok else ""

    def output(self, tail: int = 800) -> str:
        res = self.host.run(f"tail -c {tail} {self.state}/output.log", timeout=CMD_TIMEOUT_S,
                            check=False)
        return res.stdout

    def cleanup(self) -> None:
        if not self._installed:
            return
        with contextlib.suppress(HostCommandError):
            self.host.run(f"python3 {self.agent} kill {self.state} {self.id}; "
                          f"rm -rf {self.workdir} {self.state} {self.remote_script}",
                          timeout=CMD_TIMEOUT_S, check=False)
        self._installed = False


def _status(raw: dict[str, Any]) -> StepStatus:
    return StepStatus(bool(raw.get("ended")), raw.get("exit_code"), raw.get("elapsed_s"),
                      tuple(Proc(int(p), str(c), str(cmd)) for p, c, cmd in
                            raw.get("processes", [])))


def remove_agent(host: Host, run: Run) -> None:
    with contextlib.suppress(HostCommandError):
        host.run(f"rm -f /tmp/{run.name('checkout-agent.py')}", timeout=CMD_TIMEOUT_S,
                 check=False)
