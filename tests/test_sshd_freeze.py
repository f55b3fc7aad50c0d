"""A host whose ssh sessions freeze while TCP still answers is a failure, never re-run.

The fixture (tests/fixtures/sshd_freeze.sh) stops every sshd process once the
flood's bulk data arrives: port 22 still completes handshakes, no session
answers. The mtu_wedge oracle must judge it FAIL ("its ssh sessions froze"),
even though streams then move little (an inconclusive reason beside it), and
`Session.judged` must not run it again: one freeze seen is the incident.
Both backends: Docker containers and QEMU guests with their own kernel.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from repro.harness.checks import Outcome
from repro.harness.plugin import Session
from repro.harness.run import Run
from repro.mtu_wedge import scenario
from repro.mtu_wedge.config import MtuWedgeConfig

FREEZE = Path(__file__).parent / "fixtures" / "sshd_freeze.sh"


@pytest.mark.parametrize("provider", [pytest.param("docker", marks=pytest.mark.docker),
                                      pytest.param("qemu", marks=pytest.mark.qemu)])
def test_frozen_sshd_with_tcp_answering_fails_and_is_not_rerun(provider: str, run: Run,
                                                               tmp_path: Path) -> None:
    # 15 s of flood: the freeze outlasts the session-freeze limit (5 x max_gap_s = 10 s)
    cfg = MtuWedgeConfig(host_init=FREEZE, duration_s=15.0, provider=provider)
    session = Session(settings=None, reports_root=tmp_path)  # type: ignore[arg-type]
    labels: list[str] = []

    def run_once(again: str) -> object:
        labels.append("sshd freeze" + again)
        return scenario.run(run, cfg, f"sshd freeze on {provider}{again}")

    result = session.judged(run_once)  # type: ignore[arg-type]
    verdict = result.verdict
    assert verdict.outcome is Outcome.FAIL, verdict.describe()
    assert any("answered TCP but its ssh sessions froze" in r for r in verdict.reasons), \
        verdict.describe()
    assert not any("dropped off the network" in r for r in verdict.reasons), verdict.describe()
    assert labels == ["sshd freeze"], "a failure was run again"
    assert [r.superseded for r in session.results] == [False]
