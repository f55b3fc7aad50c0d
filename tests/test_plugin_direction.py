"""--repro-direction and --repro-provider select what runs without test names.

`Settings.for_incident` (the configuration under test) and `Settings.with_fixture`
(a shipped fixture in its place) skip their test when their direction is not
selected; a test that forces its own backend skips when --repro-provider names
another. Checked on a fake incident and on the real slowclone module, whose
scenario is replaced by a stub: no host starts.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from repro.harness import cleanup
from repro.harness.checks import Outcome, Verdict
from repro.harness.report.record import read_report
from repro.harness.report.results import IncidentResult
from repro.slowclone import scenario as slowclone

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parent.parent

FAKE_INCIDENT = '''
import pytest

pytestmark = [pytest.mark.mtu]


def test_configuration_under_test(repro_settings):
    assert repro_settings.for_incident("mtu_wedge").provider


def test_prefix_fixture_is_flagged(repro_settings):
    cfg = repro_settings.with_fixture("mtu_wedge", "host_init", "mtu_wedge/prefix.sh")
    assert cfg.host_init.name == "prefix.sh"
'''


@pytest.fixture(autouse=True)
def _no_reaping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cleanup, "reap", lambda all_runs: [])


def outcomes(pytester: pytest.Pytester, *args: str) -> dict[str, tuple[str, str]]:
    """test name -> (outcome, message) from the run's own report."""
    reports = pytester.path / "reports"
    pytester.runpytest_inprocess("-p", "no:cacheprovider", "--repro-reports", str(reports),
                                 *args)
    report = read_report(reports / "latest" / "results.json")
    return {t.name: (t.outcome, t.message) for t in report.tests}


@pytest.mark.parametrize(("direction", "expected"), [
    ("both", {"test_configuration_under_test": ("passed", ""),
              "test_prefix_fixture_is_flagged": ("passed", "")}),
    ("under-test", {"test_configuration_under_test": ("passed", ""),
                    "test_prefix_fixture_is_flagged": (
                        "skipped", "not selected: --repro-direction under-test")}),
    ("prefix", {"test_configuration_under_test": (
                    "skipped", "not selected: --repro-direction prefix"),
                "test_prefix_fixture_is_flagged": ("passed", "")}),
])
def test_a_direction_runs_only_its_configurations(pytester: pytest.Pytester, direction: str,
                                                  expected: dict[str, tuple[str, str]]
                                                  ) -> None:
    folder = pytester.path / "repro" / "mtu_wedge"
    folder.mkdir(parents=True)
    (folder / "test_fake.py").write_text(FAKE_INCIDENT)
    assert outcomes(pytester, str(folder), "--repro-direction", direction) == expected


def test_a_bad_direction_is_a_usage_error(pytester: pytest.Pytester) -> None:
    got = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--repro-direction", "up")
    assert got.ret == pytest.ExitCode.USAGE_ERROR


def fake_side_by_side(calls: list[list[tuple[str, str]]]) -> Any:
    def run(run_ctx: object, entries: list[tuple[Any, str, Outcome]]) -> list[IncidentResult]:
        calls.append([(label, cfg.provider) for cfg, label, _ in entries])
        return [IncidentResult("slowclone", label, str(cfg.checkout), cfg.provider,
                               Verdict(expect, ("hung at 120 s",) if expect is Outcome.FAIL
                                       else (),
                                       {"loss_mechanisms": ["nft"], "retransmissions": 40}),
                               expect, 1.0)
                for cfg, label, expect in entries]
    return run


def stub_slowclone(monkeypatch: pytest.MonkeyPatch, calls: list[list[tuple[str, str]]]) -> None:
    """The scenario stubbed, and the incident's test module imported afresh: it binds the
    scenario when it is imported (a session that collected repro/ has it already)."""
    monkeypatch.setattr(slowclone, "run_side_by_side", fake_side_by_side(calls))
    monkeypatch.delitem(sys.modules, "repro.slowclone.test_slowclone", raising=False)


def test_slowclone_on_a_docker_gate_runs_only_the_configuration_under_test_on_the_image(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[tuple[str, str]]] = []
    stub_slowclone(monkeypatch, calls)
    got = outcomes(pytester, str(ROOT / "repro" / "slowclone" / "test_slowclone.py"),
                   "--repro-direction", "under-test", "--repro-provider", "docker:cand")
    assert calls == [[("under test", "docker:cand")]]  # no QEMU guest, no pre-fix run
    assert got == {
        "test_configuration_under_test": ("passed", ""),
        "test_prefix_fixture_is_flagged": (
            "skipped", "not selected: --repro-direction under-test"),
        "test_configuration_under_test_on_qemu": (
            "skipped", "--repro-provider docker:cand names another backend; "
                       "this test forces qemu"),
        "test_prefix_fixture_is_flagged_on_qemu": (
            "skipped", "not selected: --repro-direction under-test")}


def test_slowclone_without_a_provider_runs_both_directions_on_both_backends(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[tuple[str, str]]] = []
    stub_slowclone(monkeypatch, calls)
    got = outcomes(pytester, str(ROOT / "repro" / "slowclone" / "test_slowclone.py"))
    assert calls == [[("under test", "docker"), ("prefix fixture", "docker")],
                     [("under test on qemu", "qemu"), ("prefix fixture on qemu", "qemu")]]
    # the stub's figures say nft: the QEMU tests' "netem on QEMU" assertion catches it
    assert got["test_configuration_under_test"] == ("passed", "")
    assert got["test_prefix_fixture_is_flagged"] == ("passed", "")
    assert got["test_configuration_under_test_on_qemu"][0] == "failed"
