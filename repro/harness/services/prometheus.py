"""Prometheus on the runner: a throwaway server scraping the run's hosts, rules under test.

Model: `prometheus_server(scratch, name, jobs, rules)` starts Debian's
`/usr/bin/prometheus` as a process of the runner, in its own directory under
the run's scratch dir (`/tmp/repro-<short>/repro-prometheus-<name>/`: the
generated `prometheus.yml`, a copy of the rule file under test as
`rules.yml`, the TSDB in `data/`, the log), listening on 127.0.0.1 at a free
port only, and yields a `Prometheus` to query (every request has a timeout).
The scrape and evaluation intervals are the caller's (1 s here: seconds
matter when the question is whether an alert fires within half a minute).
Scrape targets are the run's own hosts and nothing else.

Stopping is SIGTERM (Prometheus shuts down cleanly in well under a second),
SIGINT, then SIGKILL, and the directory is deleted: after a pass, a failure
or Ctrl-C (the context manager's finally). The server runs in its own
session, so a SIGKILLed run leaves it running: `reap()` (in
repro.harness.cleanup's REAPERS) finds prometheus processes by their
`--config.file` under a dead run's scratch dir, stops them and deletes the
directory.

`check_rules(path)` is `promtool check rules` as one line, or "" when the file
is sound: a bad rule file is refused before any host starts.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from repro.harness import procs
from repro.harness.errors import PrerequisiteError
from repro.harness.names import PREFIX

BINARY = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
DIR_PREFIX = f"{PREFIX}-prometheus-"
INSTALL = "apt-get install prometheus (or run setup/setup.sh)"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
PROMTOOL_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Job:
    """One scrape job: its name and its targets (host:port), with extra target labels."""

    name: str
    targets: tuple[str, ...]
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Alert:
    """One active alert instance, as Prometheus's rules API shows it."""

    name: str
    state: str  # "pending" or "firing"
    labels: dict[str, str]
    active_at: float | None  # epoch seconds the rule's expression first held


@dataclass(frozen=True)
class RulesView:
    """The alerting rules' state at one instant: active alerts and the last evaluation."""

    alerts: list[Alert]
    last_evaluation: float | None  # epoch seconds, the latest of all groups


def available() -> bool:
    return Path(BINARY).is_file() and Path(PROMTOOL).is_file()


def require() -> None:
    if not available():
        raise PrerequisiteError(f"Prometheus is not installed ({BINARY}, {PROMTOOL})", INSTALL)


def check_rules(path: Path) -> str:
    """"" when promtool accepts the rule file, else its complaint in one line (the
    check is skipped, "", where promtool is not installed: the run then says so)."""
    if not Path(PROMTOOL).is_file():
        return ""
    try:
        p = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True,
                           text=True, timeout=PROMTOOL_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return f"promtool check rules did not answer within {PROMTOOL_TIMEOUT_S:.0f} s"
    if p.returncode == 0:
        return ""
    said = [line.strip() for line in (p.stderr + p.stdout).splitlines()
            if line.strip() and not line.startswith("Checking") and "FAILED" not in line]
    return "promtool check rules: " + (" | ".join(said[:2]) or f"exit {p.returncode}")


def epoch(stamp: str | None) -> float | None:
    """Prometheus's RFC 3339 time ("2026-12-01T13:42:32.73091461Z") as epoch seconds."""
    if not stamp or stamp.startswith("0001-"):
        return None
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class Prometheus:
    url: str  # http://127.0.0.1:PORT
    directory: Path

    @property
    def log(self) -> Path:
        return self.directory / "prometheus.log"

    def get(self, path: str, timeout: float = REQUEST_TIMEOUT_S, **params: str) -> Any:
        """The `data` of an API answer; OSError (or ValueError) when it does not answer."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=timeout) as resp:
            body = json.loads(resp.read())
        if body.get("status") != "success":
            raise ValueError(f"{path}: {body.get('error', body)}")
        return body["data"]

    def query(self, expr: str, timeout: float = REQUEST_TIMEOUT_S
              ) -> list[tuple[dict[str, str], float, float]]:
        """An instant query: (labels, evaluation time, value) per series."""
        data = self.get("/api/v1/query", timeout, query=expr)
        return [(r["metric"], float(r["value"][0]), float(r["value"][1]))
                for r in data.get("result", [])]

    def rules(self, timeout: float = REQUEST_TIMEOUT_S) -> RulesView:
        data = self.get("/api/v1/rules", timeout, type="alert")
        alerts, last = [], None
        for group in data.get("groups", []):
            t = epoch(group.get("lastEvaluation"))
            last = t if last is None or (t is not None and t > last) else last
            for rule in group.get("rules", []):
                for a in rule.get("alerts", []):
                    alerts.append(Alert(rule["name"], a["state"], dict(a.get("labels", {})),
                                        epoch(a.get("activeAt"))))
        return RulesView(alerts, last)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=REQUEST_TIMEOUT_S):
                return True
        except (OSError, ValueError):
            return False


def config_text(jobs: Sequence[Job], scrape_interval_s: float, evaluation_interval_s: float
                ) -> str:
    """prometheus.yml (JSON is YAML): the intervals, the rule file, one scrape job each."""
    def seconds(s: float) -> str:
        return f"{round(s * 1000)}ms"

    config = {
        "global": {"scrape_interval": seconds(scrape_interval_s),
                   "scrape_timeout": seconds(scrape_interval_s),
                   "evaluation_interval": seconds(evaluation_interval_s)},
        "rule_files": ["rules.yml"],
        "scrape_configs": [{"job_name": j.name, "static_configs": [
            {"targets": list(j.targets), "labels": dict(j.labels)}]} for j in jobs],
    }
    return json.dumps(config, indent=2) + "\n"


@contextlib.contextmanager
def prometheus_server(scratch: Path, name: str, jobs: Sequence[Job], rules: Path, *,
                      scrape_interval_s: float = 1.0, evaluation_interval_s: float = 1.0,
                      keep_log: Path | None = None) -> Iterator[Prometheus]:
    """Start Prometheus on the rule file `rules`; stop it and delete its directory on the
    way out (its log copied to `keep_log` first, when given)."""
    require()
    directory = scratch / f"{DIR_PREFIX}{name}"
    proc: subprocess.Popen[bytes] | None = None
    try:
        shutil.rmtree(directory, ignore_errors=True)
        (directory / "data").mkdir(parents=True, mode=0o700)
        shutil.copyfile(rules, directory / "rules.yml")
        (directory / "prometheus.yml").write_text(
            config_text(jobs, scrape_interval_s, evaluation_interval_s))
        proc, port = procs.start_on_free_port(
            lambda port: _start(directory, port), lambda port: _server(directory, port).ready(),
            lambda p: _stop(p.pid, p), what="Prometheus", log=directory / "prometheus.log",
            timeout=START_TIMEOUT_S)
        yield _server(directory, port)
    finally:
        if proc is not None:
            _stop(proc.pid, proc)
        if keep_log is not None and (directory / "prometheus.log").is_file():
            with contextlib.suppress(OSError):
                shutil.copyfile(directory / "prometheus.log", keep_log)
        shutil.rmtree(directory, ignore_errors=True)


def _start(directory: Path, port: int) -> subprocess.Popen[bytes]:
    argv = [BINARY, f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}", "--storage.tsdb.retention.time=1h",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=info"]
    with (directory / "prometheus.log").open("ab") as log:
        return subprocess.Popen(argv, cwd=directory, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _server(directory: Path, port: int) -> Prometheus:
    return Prometheus(f"http://127.0.0.1:{port}", directory)


def _stop(pid: int, proc: subprocess.Popen[bytes] | None = None) -> bool:
    return procs.stop_pid(pid, polite=signal.SIGTERM, hard=signal.SIGINT,
                          timeout=STOP_TIMEOUT_S, reap=proc.poll if proc else None)


def _servers(root: Path) -> list[tuple[int, Path]]:
    """(pid, directory) of every prometheus process whose config is under `root`'s
    run scratch dirs (found by command line: no pid file can go missing)."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        argv = procs.cmdline(int(d.name))
        if not argv or Path(argv[0]).name != "prometheus":
            continue
        for arg in argv[1:]:
            config = Path(arg.removeprefix("--config.file="))
            scratch = config.parent.parent
            if arg.startswith("--config.file=") and scratch.parent == root \
                    and scratch.name.startswith(f"{PREFIX}-") \
                    and config.parent.name.startswith(DIR_PREFIX):
                found.append((int(d.name), config.parent))
    return found


def reap(all_runs: bool, live_run_ids: set[str], root: Path | None = None) -> list[str]:
    """Stop harness Prometheus servers of dead runs (all runs if `all_runs`), delete their
    directories."""
    from repro.harness.run import SCRATCH_ROOT

    base = root or SCRATCH_ROOT

    def dead(directory: Path) -> bool:
        run_id = procs.scratch_run_id(directory.parent)
        return all_runs or run_id is None or run_id not in live_run_ids

    done: list[str] = []
    for pid, directory in _servers(base):
        if dead(directory):
            stopped = _stop(pid)
            done.append(f"prometheus pid {pid} ({directory}): "
                        f"{'stopped' if stopped else 'would not stop'}")
    for directory in sorted(base.glob(f"{procs.SCRATCH_GLOB}/{DIR_PREFIX}*")):
        if directory.is_dir() and dead(directory):
            shutil.rmtree(directory, ignore_errors=True)
            done.append(f"removed Prometheus directory {directory}")
    return done
