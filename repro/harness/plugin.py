"""The pytest plugin: options, markers, fixtures, signal handling, report.

Options: --repro-config FILE (TOML, the configuration under test; checked at
start-up, a bad file is a one-line usage error), --repro-profile ci|full,
--repro-provider NAME (overrides every incident's provider), --repro-reports DIR
(default: reports/ in the working directory, wherever the package is installed),
--repro-direction both|under-test|prefix (default both; the gate runs
under-test): which direction of each incident runs. It is applied where a test
asks for its configuration, not by test names: `Settings.for_incident` is the
configuration under test and `Settings.with_fixture` a shipped fixture in its
place (the pre-fix one), and each skips its test, saying so, when its direction
is not selected (`Settings.selected` lets a test that runs both at once choose).

Fixtures:
  repro_settings  the parsed configuration; `.for_incident(name)` gives the
                  incident's config object, `.with_fixture(name, key, fixture)`
                  the same with a shipped fixture swapped in
  repro_run       the session's Run (created on first use: a run of only unit
                  tests writes no report); starting it reaps dead runs' leftovers
  repro_results   `.record(IncidentResult)` for the report; `.judged(run_once)`
                  runs again an attempt that was inconclusive

Every test in an incident's folder (repro/<incident>/, or the folder of a team's
incident registered under `repro.incidents`) is a *reproduction* (its incident
named by its marker, else by its folder; a checker's unit tests live in the
folder's tests/ and are not): the report has a row for each, whether it
recorded a result or not (repro.harness.report.record: a crash, an assertion that
failed after the verdict, a skip with its reason), and its status agrees with
pytest's exit status. While reproductions run (from the first reproduction's start, or
the first Run's, to the session's end) SIGINT, SIGTERM and SIGHUP become
KeyboardInterrupt, raised in the harness's own code and never inside a library call
(repro.harness.interrupts), so that every `finally` (heal, host removal) runs and no
library is left holding a lock; faults still injected are healed once more at exit. A
session that runs no reproduction and starts no Run keeps its signal handlers as they
were, and SIGALRM is never taken (pytest-timeout's signal method, a test's own alarm);
pytest-xdist's distribution is changed (repro.harness.xdist) only when what pytest was
asked to collect may hold reproductions (`may_hold_reproductions`).
From the Run's start its reports/<run id>/ holds results.json, summary.md and junit.xml
(an error case "run did not finish" until the end rewrites them) and reports/in-progress
points at it; a dead run's unfinished report is marked abandoned by the next session
that starts a Run (repro.harness.report.lifecycle). At the end the folder gets the final
summary.md, results.json, junit.xml, index.html (with figures/), reports/latest points
at it, and the terminal shows the table. A run
whose reproductions were all skipped before they needed hosts still gets its report.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from repro.harness import cleanup, incidents, interrupts, names, progress, provenance, shards, xdist
from repro.harness import config as cfgfile
from repro.harness.checks import Outcome
from repro.harness.errors import ConfigError, PrerequisiteError
from repro.harness.faults.base import ACTIVE
from repro.harness.procs import start_ticks
from repro.harness.report import html, record, summary
from repro.harness.report.hostlogs import HostLogs
from repro.harness.report.lifecycle import mark_abandoned
from repro.harness.report.record import RunReport, TestRecord
from repro.harness.report.results import IncidentResult
from repro.harness.run import Run, point_in_progress, point_latest, point_latest_to, start_run
from repro.harness.shards import Shard
from repro.harness.spec import HOST_BACKENDS

UNDER_TEST, PREFIX, BOTH = "under-test", "prefix", "both"
DIRECTIONS = (BOTH, UNDER_TEST, PREFIX)


@dataclass
class Settings:
    file: cfgfile.ConfigFile
    profile: str
    provider: str | None
    user_config: bool
    direction: str = BOTH  # --repro-direction
    durations: dict[str, float] = field(default_factory=dict)  # for --repro-shard

    def selected(self, direction: str) -> bool:
        """Whether `direction` (under-test or prefix) runs in this session."""
        return self.direction in (BOTH, direction)

    def select(self, direction: str) -> None:
        """Skip the calling test unless `direction` runs in this session."""
        if not self.selected(direction):
            pytest.skip(f"not selected: --repro-direction {self.direction}")

    def for_incident(self, name: str) -> Any:
        """The incident's configuration under test (skips when only pre-fix runs)."""
        self.select(UNDER_TEST)
        return self.configured(name)

    def with_fixture(self, name: str, key: str, fixture: str) -> Any:
        """The incident's config with one path key pointing at a shipped fixture (the
        pre-fix one, or another shipped in place of the configuration under test): skips
        when only the configuration under test runs."""
        self.select(PREFIX)
        root = cfgfile.fixtures_root(incidents.INCIDENTS[name].schema)
        return dataclasses.replace(self.configured(name), **{key: root / fixture})

    def prefix(self, name: str) -> Any:
        """The incident's shipped pre-fix configuration (its spec's `prefix`): skips when
        only the configuration under test runs."""
        spec = incidents.INCIDENTS[name]
        return self.with_fixture(name, spec.prefix.key, spec.prefix.fixture)

    def configured(self, name: str) -> Any:
        """The configuration under test as configured, whatever the direction (for a test
        that looks at it before it chooses what to run)."""
        obj = incidents.config_for(name, self.file, self.profile)
        if self.provider and hasattr(obj, "provider"):
            obj = dataclasses.replace(obj, provider=self.provider)
        return obj


@dataclass
class Session:
    settings: Settings
    reports_root: Path
    run: Run | None = None
    results: list[IncidentResult] = field(default_factory=list)
    tests: dict[str, TestRecord] = field(default_factory=dict)  # node id -> reproduction
    other_failures: list[str] = field(default_factory=list)     # failed tests outside repro/
    current: str = ""  # node id of the test running now: its results name it
    exit_status: int | None = None
    finished: bool = False
    logical_id: str = ""           # --repro-run-id: the run this session is (a share of)
    shard: Shard | None = None     # --repro-shard I/N
    shard_nodeids: list[str] = field(default_factory=list)
    distributed: bool = False      # under pytest-xdist (repro.harness.xdist)
    merged: Any = None             # the controller's: (merged report, its folder)
    provenance: dict[str, Any] = field(default_factory=dict)  # of the run, once it starts
    owner: dict[str, Any] = field(default_factory=dict)  # this process (report.lifecycle)
    host_logs: HostLogs | None = None  # claims the run's host logs (report.hostlogs)
    handlers: bool = False  # this session installed the interrupt handlers (gives them back)

    def __repr__(self) -> str:  # short: pytest prints it in every failing test's traceback
        return (f"Session(run={self.run.run_id if self.run else None}, "
                f"{len(self.results)} results, {len(self.tests)} reproductions)")

    def ensure_run(self) -> Run:
        if self.run is None:
            self.take_signals()  # a run's hosts and faults are coming: see the module doc
            mark_abandoned(self.reports_root)
            cleanup.reap(all_runs=False)
            self.run = start_run(self.reports_root, *self.identity())
            self.provenance = provenance.of_run()
            self.owner = {"pid": os.getpid(), "start_ticks": start_ticks(os.getpid())}
            self.host_logs = HostLogs(self.run.reports)
            self._write()  # from now on the run's junit.xml says it has not finished
            point_in_progress(self.reports_root, self.run)  # once: the newest started run
        return self.run

    def take_signals(self) -> None:
        """Install the interrupt handlers (repro.harness.interrupts) unless they are."""
        self.handlers = interrupts.install() or self.handlers

    def identity(self) -> tuple[str | None, str]:
        """(physical run id, report folder name) of a run with --repro-run-id / --repro-shard;
        (None, "") otherwise: a fresh id, its own folder."""
        if not self.logical_id:
            return None, ""
        tail = names.new_run_id().rsplit("-", 1)[-1]
        if self.shard is None:
            return f"{self.logical_id}-{tail}", self.logical_id
        return self.shard.physical_id(self.logical_id, tail), self.shard.folder(self.logical_id)

    def judged(self, run_once: Callable[[str], IncidentResult], retries: int = 1
               ) -> IncidentResult:
        """Run a reproduction; an inconclusive attempt (nothing failed, but the fault or the
        observation did not take effect, e.g. this VM lost its CPU to the hypervisor for
        seconds)
        is recorded as superseded and run again, up to `retries` times. A last
        inconclusive attempt stands: it never passes. `run_once(suffix)` gets "" and
        then " (attempt N)" to append to its label, so attempts keep their own files."""
        result = run_once("")
        for attempt in range(2, retries + 2):
            if result.verdict.outcome is not Outcome.INCONCLUSIVE:
                break
            result.superseded = True
            self.record(result)
            result = run_once(f" (attempt {attempt})")
        self.record(result)
        return result

    def record(self, result: IncidentResult) -> None:
        result.test = result.test or self.current
        if self.host_logs is not None and result.test in self.tests:  # a reproduction
            self.host_logs.on_record(result)  # its hosts' logs, moved under it and listed
        self.results.append(result)
        if self.run:
            self._write()

    def report(self) -> RunReport:
        return RunReport(self.run.run_id if self.run else "", self.results,
                         list(self.tests.values()), self.other_failures, self.exit_status,
                         self.finished, self.provenance, owner=self.owner)

    def _write(self) -> None:
        assert self.run
        out = self.run.reports
        if "qemu_image" in self.provenance:
            self.provenance["qemu_mode"] = provenance.qemu_mode() or \
                self.provenance.get("qemu_mode", "")
        rep = self.report()
        record.write_report_json(rep, out / "results.json")
        summary.write_markdown(rep, out / "summary.md")
        summary.write_junit(rep, out / "junit.xml")
        if self.shard is not None:
            shards.write_shard_json(out / "shard.json", self.logical_id, self.shard,
                                    self.run.run_id, self.shard_nodeids or list(self.tests),
                                    out)


SESSION_KEY = pytest.StashKey[Session]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("repro", "repro: postmortem reproductions")
    group.addoption("--repro-config", metavar="FILE", default=None,
                    help="TOML configuration under test (default: fixtures/default.toml)")
    group.addoption("--repro-profile", choices=cfgfile.PROFILES, default="ci",
                    help="ci (default, sized for CI) or full (the postmortem's scale)")
    group.addoption("--repro-provider", default=None,
                    help="host backend for every incident: docker, qemu, ...")
    group.addoption("--repro-reports", metavar="DIR", default=None,
                    help="where <run id>/ is written (default: reports/ in the working "
                         "directory)")
    group.addoption("--repro-run-id", metavar="RUNID", default=None,
                    help="the logical run this session is (shared by its shards); its "
                         "report folder is <reports>/RUNID")
    group.addoption("--repro-shard", metavar="I/N", default=None,
                    help="run the I-th of N deterministic, duration-balanced shares "
                         "(needs --repro-run-id); report folder RUNID.shard-I-of-N")
    group.addoption("--repro-durations", metavar="FILE", default=None,
                    help="seconds per incident for balancing shards (default: the shipped "
                         "fixtures/durations.json; `repro merge` writes one)")
    group.addoption("--repro-direction", choices=DIRECTIONS, default=BOTH,
                    help="both (default), under-test (only the configurations under test: "
                         "what the gate runs) or prefix (only the shipped fixtures)")


def pytest_configure(config: pytest.Config) -> None:
    for inc in incidents.INCIDENTS.values():
        config.addinivalue_line("markers", f"{inc.marker}: the {inc.name} incident")
    for backend in HOST_BACKENDS:
        config.addinivalue_line("markers", f"{backend}: needs the {backend} backend")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")  # (installed)
    path = config.getoption("--repro-config")
    profile = config.getoption("--repro-profile")
    try:
        if path:
            file = cfgfile.read_file(Path(path))
            incidents.validate_file(file, profile)
        else:
            file = cfgfile.read_file(cfgfile.FIXTURES / "default.toml")
        from repro.harness.hosts import ssh as ssh_hosts  # [hosts]: the machines of provider ssh
        ssh_hosts.configure(file.tables.get("hosts"), file.base, file.label)
        settings = Settings(file, profile, config.getoption("--repro-provider"), bool(path),
                            config.getoption("--repro-direction"))
        if settings.provider:
            from repro.harness.hosts.base import get_provider
            get_provider(settings.provider, key="--repro-provider")
        session = Session(settings, reports_root(config.getoption("--repro-reports")))
        shards.configure(session, config)
        if any(may_hold_reproductions(Path(str(arg).split("::", 1)[0]))
               for arg in config.args):  # else pytest-xdist is left as it is (module doc)
            xdist.configure(session, config)
            xdist.dist_by_module(config)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SESSION_KEY] = session
    progress.configure(config.option.verbose >= 0 and not hasattr(config, "workerinput"))


def reports_root(option: str | None) -> Path:
    """Where runs are written: --repro-reports, else reports/ in the working directory (not
    the package's folder: an installed package's is site-packages)."""
    return Path(option) if option else Path.cwd() / "reports"


def collect_paths(names: Iterable[str] = ()) -> list[str]:
    """The folders pytest collects the reproductions of `names` (default: every registered
    incident) from: each incident's own package folder, wherever it is installed (this
    checkout, site-packages, a team's project)."""
    specs = [incidents.INCIDENTS[n] for n in names] or list(incidents.INCIDENTS.values())
    return list(dict.fromkeys(str(s.folder) for s in specs if s.folder is not None))


@pytest.fixture(scope="session")
def repro_settings(request: pytest.FixtureRequest) -> Settings:
    return request.config.stash[SESSION_KEY].settings


@pytest.fixture(scope="session")
def repro_session(request: pytest.FixtureRequest) -> Session:
    return request.config.stash[SESSION_KEY]


@pytest.fixture(scope="session")
def repro_run(repro_session: Session) -> Iterator[Run]:
    try:
        run = repro_session.ensure_run()
    except PrerequisiteError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield run


@pytest.fixture(scope="session")
def repro_results(repro_session: Session, repro_run: Run) -> Session:
    return repro_session


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Iterator[None]:
    """A missing prerequisite is one clear line, not a traceback."""
    try:
        return (yield)
    except PrerequisiteError as exc:
        pytest.fail(f"missing prerequisite: {exc}", pytrace=False)


# ---- every reproduction in the report ------------------------------------------------------
STARTED = "started"  # set-up done, no call reported yet


@functools.cache
def _folders() -> dict[Path, str]:
    """incident folder -> incident name, of every registered incident (found once)."""
    return {s.folder.resolve(): s.name for s in incidents.INCIDENTS.values()
            if s.folder is not None}


def may_hold_reproductions(path: Path) -> bool:
    """Whether pytest collecting `path` may find reproductions: it lies in an incident's
    folder (a registered one, or a folder repro/<name>/), or holds one."""
    path = path.resolve()
    own = _folders()
    if any(path == f or f in path.parents or path in f.parents for f in own):
        return True
    return path.name == "repro" or (path / "repro").is_dir() or \
        any(p.parent.name == "repro" for p in (path, *path.parents))


def incident_of(item: pytest.Item) -> str | None:
    """The incident a test reproduces: None unless it lives in a registered incident's
    folder (or in a folder repro/<name>/); the incident whose marker it carries, else the
    folder's."""
    folder = Path(str(item.path)).parent
    own = _folders().get(folder.resolve())
    if own is None and folder.parent.name != "repro":
        return None
    markers = {m.name for m in item.iter_markers()}
    named = [i.name for i in incidents.INCIDENTS.values() if i.marker in markers]
    return named[0] if named else own or folder.name


def _why(report: pytest.TestReport) -> str:
    """pytest's failure, error or skip reason, as one line."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (file, line, "Skipped: reason")
        text = str(longrepr[2])
    else:
        crash = getattr(longrepr, "reprcrash", None)
        text = str(crash.message) if crash is not None else str(longrepr or "")
    return record.one_line(text.removeprefix("Skipped: "))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With --repro-shard: keep this shard's share of what was collected, deselect the rest."""
    state = config.stash.get(SESSION_KEY, None)
    if state is None or state.shard is None or state.distributed:
        return
    mine = shards.share([(i.nodeid, incident_of(i)) for i in items], state.shard,
                        state.settings.durations)
    keep = [i for i in items if i.nodeid in mine]
    dropped = [i for i in items if i.nodeid not in mine]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep
    state.shard_nodeids = [i.nodeid for i in keep]


def pytest_collection_finish(session: pytest.Session) -> None:
    state = session.config.stash.get(SESSION_KEY, None)
    if state is None or state.distributed:  # an xdist worker records what it is given
        return
    for item in session.items:
        incident = incident_of(item)
        if incident:
            state.tests[item.nodeid] = TestRecord(item.nodeid, incident)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None
                            ) -> Generator[None, object, object]:
    state = item.config.stash.get(SESSION_KEY, None)
    if state is not None and incident_of(item):
        state.take_signals()  # the first reproduction's start (again: nothing changes)
    if state is not None:
        state.current = _own_id(item.nodeid)
        incident = incident_of(item) if state.distributed else None
        if incident and state.current not in state.tests:
            state.tests[state.current] = TestRecord(state.current, incident)
    try:
        return (yield)
    finally:
        if state is not None:
            state.current = ""
            _claim_logs(state, _own_id(item.nodeid))


def _claim_logs(state: Session, nodeid: str) -> None:
    """The test is torn down: host logs written since its results were recorded."""
    if state.host_logs is None or state.run is None:
        return
    if nodeid not in state.tests:  # only reproductions claim (a test outside them may hold
        state.host_logs.waiting.clear()  # hosts for longer, their logs still written)
        return
    logs = state.host_logs.on_test_end(nodeid)
    if logs:
        rec = state.tests.get(nodeid)
        if rec is not None:
            rec.logs += logs
        state._write()


@pytest.hookimpl(wrapper=True, tryfirst=True)  # outermost: sees the report as it ends
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    state = item.config.stash.get(SESSION_KEY, None)
    if state is not None:
        _note(state, report)
    return report


def _own_id(nodeid: str) -> str:
    """A node id without xdist's "@group" suffix (--dist loadgroup adds it)."""
    return nodeid.split("@", 1)[0]


def _note(state: Session, report: pytest.TestReport) -> None:
    """Update the reproduction's record from one phase's report (others: count failures)."""
    rec = state.tests.get(_own_id(report.nodeid))
    if rec is None:
        if report.failed and report.nodeid not in state.other_failures:
            state.other_failures.append(report.nodeid)
        return
    rec.duration_s = round(rec.duration_s + report.duration, 2)
    if report.skipped:
        rec.outcome, rec.message = record.SKIPPED, _why(report)
    elif report.failed and report.when == "call":
        rec.outcome, rec.message = record.FAILED, _why(report)
    elif report.failed and not rec.failed:  # set-up or tear-down raised
        rec.outcome = record.ERROR
        rec.message = ("teardown: " if report.when == "teardown" else "") + _why(report)
    elif report.passed and report.when == "setup":
        rec.outcome = STARTED
    elif report.passed and report.when == "call":
        rec.outcome = record.PASSED
    if state.run and report.when != "setup":
        state._write()


def _settle(state: Session, exitstatus: int) -> None:
    """The session's end: its exit status, and what became of tests it never finished."""
    empty_shard = (state.shard is not None and not state.tests
                   and exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED)
    state.exit_status = 0 if empty_shard else int(exitstatus)  # nothing to do, done
    state.finished = True
    for rec in state.tests.values():
        if rec.outcome == STARTED:
            rec.outcome = record.ERROR
            rec.message = f"interrupted while running (pytest exit status {int(exitstatus)})"
        elif rec.outcome == record.NOT_REACHED:
            rec.message = rec.message or "not reached: the session stopped before it"
    skipped = any(r.outcome != record.NOT_REACHED for r in state.tests.values())
    if state.run is None and (skipped or state.shard is not None):
        try:  # every reproduction skipped before it needed hosts, or a shard with none
            state.run = start_run(state.reports_root, *state.identity())
        except Exception as exc:
            print(f"repro: report not written: {type(exc).__name__}: {exc}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(SESSION_KEY, None)
    ACTIVE.heal_all()
    if state is None:
        return
    controller = session.config.pluginmanager.get_plugin("repro-xdist-controller")
    if controller is not None:  # the workers wrote their folders: one report of them
        state.merged = controller.merge()
        if state.merged:
            point_latest_to(state.reports_root, state.merged[1].name)
        return
    _settle(state, exitstatus)
    if state.run is None:
        return
    state._write()
    try:
        html.write_html(state.report(), state.run.reports)
    except Exception as exc:  # the other reports are written; say what is missing
        print(f"repro: index.html not written: {type(exc).__name__}: {exc}")
    point_latest(state.reports_root, state.run)  # finished and written: now it is `latest`
    state.run.close()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    interrupts.watch_exit()  # everything is torn down and written: only exit is left
    state = config.stash.get(SESSION_KEY, None)
    if state is not None and state.handlers:  # (a session run inside another keeps its)
        interrupts.uninstall()  # the signals are the process's own again


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config
                            ) -> None:
    state = config.stash.get(SESSION_KEY, None)
    if state is not None and state.merged:
        rep, out = state.merged
        _print_table(terminalreporter, rep, out)
        return
    if state is None or state.run is None or not (state.results or state.tests):
        return
    _print_table(terminalreporter, state.report(), state.run.reports)


def _print_table(terminalreporter: Any, rep: RunReport, out: Path) -> None:
    terminalreporter.section("repro results")
    terminalreporter.write_line(summary.table(rep, fmt="simple"))
    status = rep.status()
    terminalreporter.write_line(status.headline, red=status.state == "bad",
                                green=status.state == "good")
    terminalreporter.write_line(f"report: {out / 'summary.md'}")
    terminalreporter.write_line(f"page:   {out / 'index.html'}")
