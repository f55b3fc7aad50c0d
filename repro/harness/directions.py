"""The same two tests for every incident: the fixed configuration passes, the pre-fix is caught.

Model: an incident's test module asks for its pair once,

    test_configuration_under_test, test_prefix_fixture_is_flagged = both_directions(
        "mtu_wedge", scenario.run, prefix_check=dropped_off)

and pytest collects the two functions. Each takes its configuration from the
session (`--repro-config`, `--repro-direction`, `--repro-provider`), runs the
scenario through `Session.judged` (an attempt with no failure observed but an
inconclusive verdict is run once more; a failure never is), asserts the
verdict, then the incident's optional extra check on (result, configuration).
The tests carry the incident's marker and the backend marker of the provider
its schema defaults to; a provider the user chose that the incident cannot use
(its spec says why) skips, saying so, and so does `not_run(cfg)` (a backend
asked for that this machine cannot have, e.g. MongoDB with no server).

Variants: `provider="qemu"` forces the pair onto another backend (tests named
`..._on_qemu`; skipped when --repro-provider chose the backend or the
configuration already uses it); `side_by_side(...)` runs both directions in one
scenario call (one server, one fault: the pre-fix one sets the pace) and
re-runs an inconclusive direction on its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from repro.harness import provenance
from repro.harness.checks import Outcome
from repro.harness.incidents import INCIDENTS
from repro.harness.plugin import PREFIX, UNDER_TEST, Session, Settings
from repro.harness.report.results import IncidentResult
from repro.harness.run import Run
from repro.harness.spec import HOST_BACKENDS, IncidentSpec

RunFn = Callable[[Run, Any, str, Outcome], IncidentResult]
RunManyFn = Callable[[Run, Sequence[tuple[Any, str, Outcome]]], list[IncidentResult]]
Check = Callable[[IncidentResult, Any], None]   # (result, the configuration it ran)
NotRun = Callable[[Any], "str | None"]           # why the configuration cannot run here
TestFn = Callable[..., None]


@dataclass(frozen=True)
class Direction:
    name: str            # UNDER_TEST or PREFIX
    label: str           # "under test", "prefix fixture"
    expect: Outcome
    check: Check | None

    def assert_verdict(self, result: IncidentResult, cfg: Any, spec: IncidentSpec) -> None:
        if self.expect is Outcome.PASS:
            assert result.verdict.outcome is Outcome.PASS, result.verdict.describe()
        else:
            assert result.verdict.outcome is Outcome.FAIL, (
                f"stale reproduction: the pre-fix configuration ({spec.prefix.fixture}) was "
                "not flagged\n" + result.verdict.describe())
        if self.check:
            self.check(result, cfg)


@dataclass(frozen=True)
class Pair:
    """What the two tests of one incident share."""

    spec: IncidentSpec
    provider: str = ""                        # forced backend ("" = the configured one)
    changes: dict[str, Any] = field(default_factory=dict)
    not_run: NotRun | None = None

    @property
    def suffix(self) -> str:
        return f" on {self.provider}" if self.provider else ""

    def config(self, settings: Settings, direction: Direction) -> Any:
        """The direction's configuration, or a skip saying why it does not run here."""
        name = self.spec.name
        base = settings.for_incident(name) if direction.name == UNDER_TEST else \
            settings.prefix(name)
        return self.runnable(settings, dataclasses.replace(base, **self.changes))

    def runnable(self, settings: Settings, cfg: Any) -> Any:
        reason = self.not_run(cfg) if self.not_run else None
        if reason:
            pytest.skip(reason)
        if self.provider:
            if settings.provider:
                other = settings.provider.partition(":")[0] != self.provider
                pytest.skip(f"--repro-provider {settings.provider} " + (
                    f"names another backend; this test forces {self.provider}" if other else
                    "chose the backend: test_configuration_under_test ran on it"))
            if settings.configured(self.spec.name).provider == self.provider:
                pytest.skip(f'the configuration already says provider = "{self.provider}": '
                            "test_configuration_under_test ran on it")
            return dataclasses.replace(cfg, provider=self.provider)
        provider = str(getattr(cfg, "provider", "")).partition(":")[0]
        if provider and provider not in self.spec.backends:
            pytest.skip(f"{self.spec.name} cannot run on {provider} (--repro-provider or the "
                        f"configuration chose it): {self.spec.why_not(provider)}")
        return cfg


def both_directions(incident: str, run: RunFn, *, prefix_check: Check | None = None,
                    under_test_check: Check | None = None, provider: str = "",
                    changes: dict[str, Any] | None = None, marked: bool = True,
                    not_run: NotRun | None = None) -> tuple[TestFn, TestFn]:
    """(test_configuration_under_test, test_prefix_fixture_is_flagged) for `incident`.
    `marked=False` leaves the incident's marker off (a slow variant kept out of -m);
    `changes` are config values the variant sets (e.g. a smaller repository on TCG)."""
    pair = Pair(INCIDENTS[incident], provider, dict(changes or {}), not_run)

    def make(direction: Direction) -> TestFn:
        def test(repro_settings: Settings, repro_run: Run, repro_results: Session) -> None:
            cfg = pair.config(repro_settings, direction)
            result = repro_results.judged(lambda again: traced(run(
                repro_run, cfg, f"{direction.label}{pair.suffix}{again}", direction.expect), cfg))
            direction.assert_verdict(result, cfg, pair.spec)
        return test

    return _finish(pair, marked, make, under_test_check, prefix_check)


def side_by_side(incident: str, run_many: RunManyFn, *, prefix_check: Check | None = None,
                 under_test_check: Check | None = None, provider: str = "",
                 changes: dict[str, Any] | None = None, marked: bool = True
                 ) -> tuple[TestFn, TestFn, Any]:
    """Like both_directions, both directions run together in one scenario call (a
    module-scoped fixture, returned third: bind it to a module name so pytest finds it).
    An inconclusive direction is run again on its own."""
    pair = Pair(INCIDENTS[incident], provider, dict(changes or {}))
    fixture_name = f"repro_{incident}_together{'_' + provider if provider else ''}"

    @pytest.fixture(scope="module", name=fixture_name)
    def together(repro_settings: Settings, repro_run: Run) -> dict[str, tuple[Any, Any]]:
        entries: dict[str, tuple[Any, str, Outcome]] = {}
        for d in _directions(under_test_check, prefix_check):
            if repro_settings.selected(d.name):
                entries[d.name] = (pair.config(repro_settings, d), f"{d.label}{pair.suffix}",
                                   d.expect)
        results = run_many(repro_run, list(entries.values()))
        return {n: (e[0], r) for (n, e), r in zip(entries.items(), results, strict=True)}

    def make(direction: Direction) -> TestFn:
        def test(request: pytest.FixtureRequest, repro_settings: Settings, repro_run: Run,
                 repro_results: Session) -> None:
            pair.config(repro_settings, direction)  # the skips, before the shared run
            cfg, first = request.getfixturevalue(fixture_name)[direction.name]
            result = repro_results.judged(lambda again: traced(first, cfg) if not again else
                                          traced(run_many(repro_run, [(
                                              cfg, f"{direction.label}{pair.suffix}{again}",
                                              direction.expect)])[0], cfg))
            direction.assert_verdict(result, cfg, pair.spec)
        return test

    under, prefix = _finish(pair, marked, make, under_test_check, prefix_check)
    return under, prefix, together


def traced(result: IncidentResult, cfg: Any) -> IncidentResult:
    """The result with what it ran on: the configuration's values, files and seeds."""
    history = result.artefacts.get("history")
    if history and not result.provenance:
        result.provenance = provenance.of_config(cfg, Path(history).parent)
    return result


def _directions(under_test_check: Check | None, prefix_check: Check | None
                ) -> tuple[Direction, Direction]:
    return (Direction(UNDER_TEST, "under test", Outcome.PASS, under_test_check),
            Direction(PREFIX, "prefix fixture", Outcome.FAIL, prefix_check))


def _finish(pair: Pair, marked: bool, make: Callable[[Direction], TestFn],
            under_test_check: Check | None, prefix_check: Check | None
            ) -> tuple[TestFn, TestFn]:
    names = ("test_configuration_under_test", "test_prefix_fixture_is_flagged")
    tests = []
    for name, direction in zip(names, _directions(under_test_check, prefix_check),
                               strict=True):
        test = make(direction)
        test.__name__ = test.__qualname__ = name + (f"_on_{pair.provider}"
                                                    if pair.provider else "")
        for mark in _marks(pair.spec, pair.provider, marked):
            test = mark(test)
        tests.append(test)
    return tests[0], tests[1]


def _marks(spec: IncidentSpec, forced: str, marked: bool) -> list[pytest.MarkDecorator]:
    marks = [getattr(pytest.mark, spec.marker)] if marked else []
    field_ = spec.schema.__dataclass_fields__.get("provider")
    backend = forced or (str(field_.default) if field_ is not None else "")
    if backend in HOST_BACKENDS:
        marks.append(getattr(pytest.mark, backend))
    return marks
