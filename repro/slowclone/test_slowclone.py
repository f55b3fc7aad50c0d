"""slowclone: both directions, on Docker (nftables loss) and on QEMU (netem loss).

- the configuration under test (its `checkout`, default fixtures/slowclone/fixed.sh)
  must pass: under loss it finishes at COMMIT or gives up by itself in budget, and a
  cancel ends it with every git child;
- the pre-fix fixture (a plain clone) must be flagged as hung; if it stops failing,
  the reproduction has gone stale, which is a finding. Its capture must show
  retransmissions (minutes under 30 % loss). How far the sender's timer backed off
  (`longest_backoff_run`: one segment lost again and again, as in the postmortem's
  tcpdump) is up to the random loss, so it is a figure in the report, not an
  assertion: one run in two on Docker saw a chain of 2, not 3.

Both directions of one provider run side by side (one git server, one build host
each, one loss fault): the pre-fix one sets the pace at twice the budget. Under
--repro-direction only the selected one runs. The QEMU tests force their backend:
they skip when --repro-provider chose one (the tests above then run on it) or the
configuration already says provider = "qemu".
"""

from __future__ import annotations

import dataclasses

import pytest

from repro.checks import Outcome
from repro.plugin import PREFIX, UNDER_TEST, Session, Settings
from repro.report.results import IncidentResult
from repro.run import Run
from repro.slowclone import scenario

pytestmark = [pytest.mark.slowclone]
QEMU_REPO_MB = 4.0  # TCG guests generate and serve slowly; under loss 4 MB never finishes either


def both_directions(settings: Settings, run: Run, **changes: object
                    ) -> dict[str, IncidentResult]:
    """The selected directions side by side: {"under test": ..., "prefix": ...}."""
    tag = f"{changes['provider']} " if "provider" in changes else ""
    entries = {}
    if settings.selected(UNDER_TEST):
        entries["under test"] = (dataclasses.replace(settings.for_incident("slowclone"),
                                                     **changes),
                                 f"{tag}under test", Outcome.PASS)
    if settings.selected(PREFIX):
        entries["prefix"] = (dataclasses.replace(
            settings.with_fixture("slowclone", "checkout", "slowclone/prefix.sh"), **changes),
            f"{tag}prefix fixture", Outcome.FAIL)
    results = scenario.run_side_by_side(run, list(entries.values()))
    return dict(zip(entries, results, strict=True))


def selected(results: dict[str, IncidentResult], direction: str, settings: Settings
             ) -> IncidentResult:
    if direction not in results:
        pytest.skip(f"not selected: --repro-direction {settings.direction}")
    return results[direction]


def skip_unless_qemu_is_ours(settings: Settings) -> None:
    """The QEMU tests force their backend: not when the run chose one, or already QEMU."""
    if settings.provider:
        other = settings.provider.partition(":")[0] != "qemu"
        pytest.skip(f"--repro-provider {settings.provider} "
                    + ("names another backend; this test forces qemu" if other else
                       "chose the backend: test_configuration_under_test ran on it"))
    if settings.configured("slowclone").provider == "qemu":
        pytest.skip('the configuration already says provider = "qemu": '
                    "test_configuration_under_test ran on it")


@pytest.fixture(scope="module")
def on_docker(repro_settings: Settings, repro_run: Run) -> dict[str, IncidentResult]:
    return both_directions(repro_settings, repro_run)


@pytest.fixture(scope="module")
def on_qemu(repro_settings: Settings, repro_run: Run) -> dict[str, IncidentResult]:
    skip_unless_qemu_is_ours(repro_settings)
    return both_directions(repro_settings, repro_run, provider="qemu", repo_mb=QEMU_REPO_MB)


def assert_under_test_passes(result: IncidentResult, results: Session) -> None:
    results.record(result)
    assert result.verdict.outcome is Outcome.PASS, result.verdict.describe()


def assert_prefix_flagged(result: IncidentResult, results: Session) -> None:
    results.record(result)
    assert result.verdict.outcome is Outcome.FAIL, (
        "stale reproduction: the pre-fix checkout was not flagged\n" + result.verdict.describe())
    # hung at twice the budget, or gave up by itself long after it (git's own "remote end
    # hung up" after ~115 s under 30 % loss on TCG): either way no timeout of its own held
    assert any("hung" in r or "over its" in r for r in result.verdict.reasons), (
        result.verdict.describe())
    # minutes under 30 % loss: certain to retransmit (how far the timer backed off is not)
    assert result.figures["retransmissions"] > 0, result.figures


def assert_loss_measured(result: IncidentResult) -> None:
    """The loss went through a mechanism whose counters were read back. Which one is the
    host kernel's to decide (nft where it lacks sch_netem, as here; netem on QEMU guests,
    whose Debian kernel has it), except on QEMU."""
    mechanisms = result.figures.get("loss_mechanisms")
    assert mechanisms and set(mechanisms) <= {"nft", "netem"}, result.figures
    if result.provider.partition(":")[0] == "qemu":
        assert mechanisms == ["netem"], result.figures


@pytest.mark.docker
def test_configuration_under_test(on_docker: dict[str, IncidentResult],
                                  repro_results: Session, repro_settings: Settings) -> None:
    result = selected(on_docker, "under test", repro_settings)
    assert_under_test_passes(result, repro_results)
    assert_loss_measured(result)


@pytest.mark.docker
def test_prefix_fixture_is_flagged(on_docker: dict[str, IncidentResult],
                                   repro_results: Session, repro_settings: Settings) -> None:
    result = selected(on_docker, "prefix", repro_settings)
    assert_prefix_flagged(result, repro_results)
    assert_loss_measured(result)


@pytest.mark.qemu
def test_configuration_under_test_on_qemu(on_qemu: dict[str, IncidentResult],
                                          repro_results: Session,
                                          repro_settings: Settings) -> None:
    result = selected(on_qemu, "under test", repro_settings)
    assert_under_test_passes(result, repro_results)
    assert_loss_measured(result)


@pytest.mark.qemu
def test_prefix_fixture_is_flagged_on_qemu(on_qemu: dict[str, IncidentResult],
                                           repro_results: Session,
                                           repro_settings: Settings) -> None:
    result = selected(on_qemu, "prefix", repro_settings)
    assert_prefix_flagged(result, repro_results)
    assert_loss_measured(result)
