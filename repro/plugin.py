"""The pytest plugin: options, markers, fixtures, signal handling, report.

Options: --repro-config FILE (TOML, the configuration under test; checked at
start-up, a bad file is a one-line usage error), --repro-profile ci|full,
--repro-provider NAME (overrides every incident's provider), --repro-reports DIR.

Fixtures:
  repro_settings  the parsed configuration; `.for_incident(name)` gives the
                  incident's config object, `.prefix_for(name, **changes)` the
                  same with the pre-fix fixture swapped in
  repro_run       the session's Run (created on first use: a run of only unit
                  tests writes no report); starting it reaps dead runs' leftovers
  repro_results   `.record(IncidentResult)` for the report

SIGTERM and SIGHUP become KeyboardInterrupt so that every `finally` (heal,
host removal) runs; faults still injected are healed once more at exit.
At the end the run's reports/<run id>/ gets summary.md, results.json,
junit.xml, index.html (with figures/), reports/latest points at it, and the
terminal shows the table.
"""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from repro import cleanup, incidents
from repro import config as cfgfile
from repro.checks import Outcome
from repro.errors import ConfigError, PrerequisiteError
from repro.faults.base import ACTIVE
from repro.report import html, summary
from repro.report.results import IncidentResult, write_json
from repro.run import Run, point_latest, start_run

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Settings:
    file: cfgfile.ConfigFile
    profile: str
    provider: str | None
    user_config: bool

    def for_incident(self, name: str) -> Any:
        obj = incidents.config_for(name, self.file, self.profile)
        if self.provider and hasattr(obj, "provider"):
            obj = dataclasses.replace(obj, provider=self.provider)
        return obj

    def with_fixture(self, name: str, key: str, fixture: str) -> Any:
        """The incident's config with one path key pointing at a shipped fixture."""
        return dataclasses.replace(self.for_incident(name), **{key: cfgfile.FIXTURES / fixture})


@dataclass
class Session:
    settings: Settings
    reports_root: Path
    run: Run | None = None
    results: list[IncidentResult] = field(default_factory=list)

    def ensure_run(self) -> Run:
        if self.run is None:
            cleanup.reap(all_runs=False)
            self.run = start_run(self.reports_root)
        return self.run

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
        self.results.append(result)
        if self.run:
            self._write()

    def _write(self) -> None:
        assert self.run
        out = self.run.reports
        write_json(self.results, out / "results.json", self.run.run_id)
        summary.write_markdown(self.results, out / "summary.md", self.run.run_id)
        summary.write_junit(self.results, out / "junit.xml", self.run.run_id)
        point_latest(self.reports_root, self.run)


SESSION_KEY = pytest.StashKey[Session]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("repro", "repro: postmortem reproductions")
    group.addoption("--repro-config", metavar="FILE", default=None,
                    help="TOML configuration under test (default: fixtures/default.toml)")
    group.addoption("--repro-profile", choices=cfgfile.PROFILES, default="ci",
                    help="ci (default, sized for CI) or full (the postmortem's scale)")
    group.addoption("--repro-provider", default=None,
                    help="host backend for every incident: docker, qemu, ...")
    group.addoption("--repro-reports", metavar="DIR", default=str(PROJECT_ROOT / "reports"),
                    help="where reports/<run id>/ is written")


def pytest_configure(config: pytest.Config) -> None:
    for inc in incidents.INCIDENTS.values():
        config.addinivalue_line("markers", f"{inc.marker}: the {inc.name} incident")
    for backend in ("docker", "qemu", "ec2"):
        config.addinivalue_line("markers", f"{backend}: needs the {backend} backend")
    path = config.getoption("--repro-config")
    profile = config.getoption("--repro-profile")
    try:
        if path:
            file = cfgfile.read_file(Path(path))
            incidents.validate_file(file, profile)
        else:
            file = cfgfile.read_file(cfgfile.FIXTURES / "default.toml")
        settings = Settings(file, profile, config.getoption("--repro-provider"), bool(path))
        if settings.provider:
            from repro.hosts.base import get_provider
            get_provider(settings.provider)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SESSION_KEY] = Session(settings, Path(config.getoption("--repro-reports")))
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(SESSION_KEY, None)
    ACTIVE.heal_all()
    if state is None or state.run is None:
        return
    state._write()
    try:
        html.write_html(state.results, state.run.reports, state.run.run_id)
    except Exception as exc:  # the other reports are written; say what is missing
        print(f"repro: index.html not written: {type(exc).__name__}: {exc}")
    state.run.close()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config
                            ) -> None:
    state = config.stash.get(SESSION_KEY, None)
    if state is None or not state.results or state.run is None:
        return
    terminalreporter.section("repro results")
    terminalreporter.write_line(summary.table(state.results, fmt="simple"))
    terminalreporter.write_line(f"report: {state.run.reports / 'summary.md'}")
    terminalreporter.write_line(f"page:   {state.run.reports / 'index.html'}")
