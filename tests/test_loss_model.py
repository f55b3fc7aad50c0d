"""Loss models, the loss judge and the nftables rules, without hosts."""

from __future__ import annotations

import pytest

from repro.faults.loss import LossModel, judge_loss


def test_independent_loss_is_netem_random_without_correlation() -> None:
    m = LossModel(0.3)
    assert m.independent and m.inflation == 1.0 and m.required_packets() == 5000
    assert m.netem() == "loss random 30.0000%"


def test_bursts_are_gilbert_elliott_with_the_asked_stationary_loss() -> None:
    m = LossModel(0.3, burst=4)
    p, r = m.gilbert()
    assert r == 0.25 and p / (p + r) == pytest.approx(0.3)
    assert m.netem().startswith("loss gemodel ") and m.netem().endswith(" 100% 0%")
    # correlated samples: more packets are needed for the same precision
    assert 4 < m.inflation < 5 and m.required_packets() > 20000


def test_model_validation() -> None:
    with pytest.raises(ValueError):
        LossModel(1.0).validate()
    with pytest.raises(ValueError):
        LossModel(0.3, burst=0.5).validate()


@pytest.mark.parametrize(("offered", "dropped", "oversize", "verdict"), [
    (6000, 1800, 0, ""),                        # 30.0 %
    (6000, 1700, 0, ""),                        # 28.3 %: within 2 points
    (6000, 1600, 0, "more than 2 points off"),  # 26.7 %
    (6000, 6, 0, "more than 2 points off"),     # offloads-style miss: 0.1 %
    (4000, 1200, 0, "only 4000 packets"),       # too few to tell
    (6000, 1800, 12, "segmentation offload"),   # super-packets at the rule
])
def test_judge_loss(offered: int, dropped: int, oversize: int, verdict: str) -> None:
    got = judge_loss(0.3, offered, dropped, oversize)
    assert (verdict in got) if verdict else got == ""
