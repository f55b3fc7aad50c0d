"""slowclone: both directions, on Docker (nftables loss) and on QEMU (netem loss).

- the configuration under test (its `checkout`, default fixtures/slowclone/fixed.sh)
  must pass: under loss it finishes at COMMIT or gives up by itself in budget, and a
  cancel ends it with every git child;
- the pre-fix fixture (a plain clone) must be flagged as hung; if it stops failing,
  the reproduction has gone stale, which is a finding. Its capture must show the
  sender's retransmission timer backing off, as the postmortem's tcpdump did.

Both directions of one provider run side by side (one git server, one build host
each, one loss fault): the pre-fix one sets the pace at twice the budget.
"""

from __future__ import annotations

import dataclasses

import pytest

from repro.checks import Outcome
from repro.plugin import Session, Settings
from repro.report.results import IncidentResult
from repro.run import Run
from repro.slowclone import scenario

pytestmark = [pytest.mark.slowclone]
QEMU_REPO_MB = 4.0  # TCG guests generate and serve slowly; under loss 4 MB never finishes either


def both_directions(settings: Settings, run: Run, **changes: object
                    ) -> dict[str, IncidentResult]:
    under_test = dataclasses.replace(settings.for_incident("slowclone"), **changes)
    prefix = dataclasses.replace(
        settings.with_fixture("slowclone", "checkout", "slowclone/prefix.sh"), **changes)
    tag = f"{changes['provider']} " if "provider" in changes else ""
    results = scenario.run_side_by_side(run, [(under_test, f"{tag}under test", Outcome.PASS),
                                              (prefix, f"{tag}prefix fixture", Outcome.FAIL)])
    return {"under test": results[0], "prefix": results[1]}


@pytest.fixture(scope="module")
def on_docker(repro_settings: Settings, repro_run: Run) -> dict[str, IncidentResult]:
    return both_directions(repro_settings, repro_run)


@pytest.fixture(scope="module")
def on_qemu(repro_settings: Settings, repro_run: Run) -> dict[str, IncidentResult]:
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
    assert result.figures["retransmissions"] > 0


@pytest.mark.docker
def test_configuration_under_test(on_docker: dict[str, IncidentResult],
                                  repro_results: Session) -> None:
    assert_under_test_passes(on_docker["under test"], repro_results)
    assert on_docker["under test"].figures["loss_mechanisms"] == ["nft"]


@pytest.mark.docker
def test_prefix_fixture_is_flagged(on_docker: dict[str, IncidentResult],
                                   repro_results: Session) -> None:
    result = on_docker["prefix"]
    assert_prefix_flagged(result, repro_results)
    # the capture sits before the drop: it shows the timer doubling, as in the postmortem
    assert result.figures["longest_backoff_run"] >= 3, result.figures


@pytest.mark.qemu
def test_configuration_under_test_on_qemu(on_qemu: dict[str, IncidentResult],
                                          repro_results: Session) -> None:
    assert_under_test_passes(on_qemu["under test"], repro_results)
    assert on_qemu["under test"].figures["loss_mechanisms"] == ["netem"]


@pytest.mark.qemu
def test_prefix_fixture_is_flagged_on_qemu(on_qemu: dict[str, IncidentResult],
                                           repro_results: Session) -> None:
    assert_prefix_flagged(on_qemu["prefix"], repro_results)
    assert on_qemu["prefix"].figures["loss_mechanisms"] == ["netem"]
