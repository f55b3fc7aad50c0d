"""slowclone: both directions, on Docker (nftables loss) and on QEMU (netem loss).

- the configuration under test (its `checkout`, default fixtures/slowclone/fixed.sh)
  must pass: under loss it finishes at COMMIT or gives up by itself in budget, and a
  cancel ends it with every git child;
- the pre-fix fixture (a plain clone) must be flagged as hung; if it stops failing,
  the reproduction has gone stale, which is a finding. Its capture must show the
  sender's retransmission timer backing off, as the postmortem's tcpdump did.
"""

from __future__ import annotations

import dataclasses

import pytest

from repro.checks import Outcome
from repro.plugin import Session, Settings
from repro.run import Run
from repro.slowclone import scenario

pytestmark = [pytest.mark.slowclone]
QEMU_REPO_MB = 4.0  # TCG guests generate and serve slowly; under loss 4 MB never finishes either


@pytest.mark.docker
def test_configuration_under_test(repro_settings: Settings, repro_run: Run,
                                  repro_results: Session) -> None:
    cfg = repro_settings.for_incident("slowclone")
    result = scenario.run(repro_run, cfg, "under test")
    repro_results.record(result)
    assert result.verdict.outcome is Outcome.PASS, result.verdict.describe()


@pytest.mark.docker
def test_prefix_fixture_is_flagged(repro_settings: Settings, repro_run: Run,
                                   repro_results: Session) -> None:
    cfg = repro_settings.with_fixture("slowclone", "checkout", "slowclone/prefix.sh")
    result = scenario.run(repro_run, cfg, "prefix fixture", expect=Outcome.FAIL)
    repro_results.record(result)
    assert result.verdict.outcome is Outcome.FAIL, (
        "stale reproduction: the pre-fix checkout was not flagged\n" + result.verdict.describe())
    assert any("hung" in r for r in result.verdict.reasons), result.verdict.describe()
    # the capture shows what the postmortem's tcpdump showed: a timer that keeps doubling
    assert result.figures["retransmissions"] > 0
    assert result.figures["longest_backoff_run"] >= 3, result.figures


@pytest.mark.qemu
@pytest.mark.parametrize(("fixture", "expect"), [("slowclone/prefix.sh", Outcome.FAIL),
                                                 ("slowclone/fixed.sh", Outcome.PASS)])
def test_both_directions_on_qemu_with_netem(repro_settings: Settings, repro_run: Run,
                                            repro_results: Session, fixture: str,
                                            expect: Outcome) -> None:
    cfg = dataclasses.replace(repro_settings.with_fixture("slowclone", "checkout", fixture),
                              provider="qemu", repo_mb=QEMU_REPO_MB)
    result = scenario.run(repro_run, cfg, f"qemu {fixture.split('/')[-1]}", expect=expect)
    repro_results.record(result)
    assert result.verdict.outcome is expect, result.verdict.describe()
    assert all(v.endswith("%") for v in result.figures["loss_achieved"].values())
    assert result.figures["loss_mechanisms"] == ["netem"]
