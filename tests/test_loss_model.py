"""Loss models, the loss judge and the nftables rules, without hosts."""

from __future__ import annotations

from pathlib import Path

import pytest

from repro.harness.faults.loss import LossModel, judge_loss


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


class _Stub:
    def __init__(self, name: str, address: str):
        self.name, self.address = name, address


def _ruleset(model: LossModel) -> str:
    from repro.harness.faults.loss import Direction, PacketLoss, _HostState
    from repro.harness.run import Run

    run = Run("20260101-000000-ab12", Path("/nonexistent"), Path("/nonexistent"), None)  # type: ignore[arg-type]
    a, b, c = _Stub("a", "10.0.0.1"), _Stub("b", "10.0.0.2"), _Stub("c", "10.0.0.3")
    fault = PacketLoss(run, [a, b, c], model, pairs=[(a, b), (a, c)])  # type: ignore[list-item]
    st = _HostState(a, "eth0", None, mtu=1400)  # type: ignore[arg-type]
    st.nft_sources = [Direction(b, a, "nft", 0), Direction(c, a, "nft", 1)]  # type: ignore[arg-type]
    assert fault.table == "repro-ab12-loss"
    return fault._nft_ruleset(st)


def test_nft_rules_independent_loss() -> None:
    rules = _ruleset(LossModel(0.3))
    assert "table inet repro-ab12-loss" in rules and "priority -300" in rules
    assert "ip saddr 10.0.0.2 numgen random mod 1000000 < 300000 counter name d0 drop" in rules
    assert "ip saddr 10.0.0.3 meta length > 1400 counter name x1" in rules
    assert "ct mark" not in rules


def test_nft_rules_bursty_loss_keep_state_in_the_connection_mark() -> None:
    rules = _ruleset(LossModel(0.3, burst=4))
    assert "priority -150" in rules  # after conntrack
    assert "ip saddr 10.0.0.2 ct mark 0x5250 numgen random mod 1000000 < 250000 " \
           "ct mark set 0 counter name d0 drop" in rules
    assert "ip saddr 10.0.0.2 numgen random mod 1000000 < 107143 ct mark set 0x5250" in rules


def test_pairs_must_cover_every_host() -> None:
    from repro.harness.errors import FaultError
    from repro.harness.faults.loss import PacketLoss
    from repro.harness.run import Run

    run = Run("20260101-000000-ab12", Path("/x"), Path("/x"), None)  # type: ignore[arg-type]
    a, b, c = _Stub("a", "1"), _Stub("b", "2"), _Stub("c", "3")
    with pytest.raises(FaultError):
        PacketLoss(run, [a, b, c], LossModel(0.3), pairs=[(a, b)])  # type: ignore[list-item]
