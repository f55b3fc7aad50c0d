"""The slowclone oracle on hand-written histories."""

from __future__ import annotations

from typing import Any

from repro.harness.checks import Outcome, run_checker
from repro.harness.history import Event
from repro.slowclone.check import Params, check
from tests.histories import ev

COMMIT = "c0ffee" * 6 + "abcd"
P = Params(commit=COMMIT, budget_s=60.0, cancel_grace_s=5.0, loss=0.3)
B, S = "repro-ab12-build", "repro-ab12-gitserver"


def loss(dropped: tuple[int, int] = (7200, 7300), offered: int = 24000, oversize: int = 0,
         shortfall: str = "") -> list[Event]:
    dirs = [{"src": B, "dst": S, "mechanism": "nft", "offered": offered, "dropped": dropped[0],
             "oversize": oversize},
            {"src": S, "dst": B, "mechanism": "nft", "offered": offered, "dropped": dropped[1],
             "oversize": 0}]
    return [ev(5.0, "fault.start", f"{B},{S}", fault="loss", shortfall=shortfall, measured={}),
            ev(200.0, "fault.stop", f"{B},{S}", fault="loss"),
            ev(200.0, "fault.measure", f"{B},{S}", fault="loss", rate=0.3, burst=4.0,
               required=23000, directions=dirs)]


def op(t: float, name: str, run: str, phase: str, **f: Any) -> Event:
    return ev(t, "op", B, name=name, run=run, phase=phase, **f)


def baseline(code: int = 0, head: str = COMMIT) -> list[Event]:
    return [op(1.0, "checkout", "baseline", "start"),
            op(2.0, "checkout", "baseline", "exit", exit_code=code, elapsed_s=0.4, head=head)]


def cancel_run(ended_after: float | None = 0.8, survivors: list[Any] | None = None
               ) -> list[Event]:
    return [op(10.0, "checkout", "cancel", "start"),
            op(20.0, "cancel", "cancel", "sent", elapsed_s=10.0),
            op(21.0, "cancel", "cancel", "done", ended_after_s=ended_after,
               survivors=survivors or [])]


def budget_exit(elapsed: float, code: int, head: str = "") -> list[Event]:
    return [op(10.0, "checkout", "budget", "start"),
            op(10.0 + elapsed, "checkout", "budget", "exit", exit_code=code, elapsed_s=elapsed,
               head=head)]


def hung() -> list[Event]:
    return [op(10.0, "checkout", "budget", "start"),
            op(130.0, "checkout", "budget", "hung", elapsed_s=120.0, processes=[]),
            op(130.0, "cancel", "budget", "sent", elapsed_s=120.0),
            op(131.0, "cancel", "budget", "done", ended_after_s=0.7, survivors=[])]


def judge(events: list[Event]) -> Any:
    return run_checker(check, sorted(events, key=lambda e: e.t), P)


def test_fixed_step_gives_up_in_budget_and_cancels_cleanly() -> None:
    v = judge(loss() + baseline() + budget_exit(48.0, 128) + cancel_run())
    assert v.outcome is Outcome.PASS, v.describe()
    assert v.figures["under_loss_s"] == 48.0 and v.figures["cancel_cancel_ended_after_s"] == 0.8
    assert v.figures["loss_achieved"][f"{B} -> {S}"] == "7200/24000 = 30.0%"


def test_a_step_that_finishes_at_commit_passes() -> None:
    assert judge(loss() + baseline() + budget_exit(20.0, 0, COMMIT) + cancel_run()).ok


def test_prefix_hung_at_twice_the_budget_is_the_incident() -> None:
    v = judge(loss() + baseline() + hung() + cancel_run())
    assert v.outcome is Outcome.FAIL
    assert any("hung" in r and "120 s" in r for r in v.reasons)


def test_over_budget_and_wrong_commit_fail() -> None:
    v = judge(loss() + baseline() + budget_exit(75.0, 1) + cancel_run())
    assert v.outcome is Outcome.FAIL and "over its 60 s budget" in v.reasons[0]
    v = judge(loss() + baseline() + budget_exit(30.0, 0, "f" * 40) + cancel_run())
    assert v.outcome is Outcome.FAIL and "exited 0 but left WORKDIR" in v.reasons[0]


def test_a_cancel_that_leaves_git_running_fails() -> None:
    survivors = [[241, "git", "git fetch"], [243, "git-remote-http", "git-remote-http o"]]
    v = judge(loss() + baseline() + budget_exit(48.0, 124) + cancel_run(None, survivors))
    assert v.outcome is Outcome.FAIL
    assert "git (pid 241), git-remote-http (pid 243)" in v.reasons[0]
    v = judge(loss() + baseline() + budget_exit(48.0, 124) + cancel_run(6.5))
    assert v.outcome is Outcome.FAIL and "within 5 s" in v.reasons[0]


def test_a_step_broken_without_loss_fails() -> None:
    v = judge(loss() + baseline(128, "") + budget_exit(48.0, 128) + cancel_run())
    assert v.outcome is Outcome.FAIL and "without any loss" in v.reasons[0]


def test_loss_that_missed_its_target_is_inconclusive_never_a_pass() -> None:
    # offloads on: the rule saw super-packets, and the pre-fix would "pass"
    v = judge(loss(oversize=40) + baseline() + budget_exit(3.0, 0, COMMIT) + cancel_run())
    assert v.outcome is Outcome.INCONCLUSIVE and "segmentation offload" in v.reasons[0]
    v = judge(loss(dropped=(30, 7300)) + baseline() + hung() + cancel_run())
    # an observed hang is a failure even under the wrong loss; the shortfall stands beside it
    assert v.outcome is Outcome.FAIL and "still running" in v.reasons[0]
    assert "more than 2 points off" in v.reasons[-1]
    v = judge(loss(shortfall="achieved loss 1.0%") + baseline() + budget_exit(3.0, 0, COMMIT))
    assert v.outcome is Outcome.INCONCLUSIVE
    v = judge(baseline() + budget_exit(3.0, 0, COMMIT) + cancel_run())
    assert v.outcome is Outcome.INCONCLUSIVE and "no packet loss" in v.reasons[0]
    v = judge(loss()[:1] + baseline() + budget_exit(3.0, 0, COMMIT) + cancel_run())
    assert v.outcome is Outcome.INCONCLUSIVE and "never read back" in v.reasons[0]


def test_cancel_never_exercised_or_step_never_ran_is_inconclusive() -> None:
    early = [op(10.0, "checkout", "cancel", "start"),
             op(13.0, "checkout", "cancel", "exit", exit_code=0, elapsed_s=3.0, head=COMMIT)]
    v = judge(loss() + baseline() + budget_exit(3.0, 0, COMMIT) + early)
    assert v.outcome is Outcome.INCONCLUSIVE and "cancel was not exercised" in v.reasons[0]
    v = judge(loss() + baseline())
    assert v.outcome is Outcome.INCONCLUSIVE and "never ran under loss" in v.reasons[0]


def test_a_crashing_checker_is_unknown() -> None:
    bad = loss()
    bad[2] = ev(200.0, "fault.measure", "", fault="loss", directions=[{"src": "x"}])
    assert judge(bad + baseline() + hung()).outcome is Outcome.UNKNOWN


def test_capture_figures_reach_the_verdict() -> None:
    cap = ev(199.0, "capture", B, retransmissions=277, longest_retransmission_gap_s=57.3,
             longest_backoff_run=5, longest_backoff_gaps_s=[3.7, 7.2, 14.3, 28.9, 57.3],
             zero_windows=0, resets=1)
    v = judge(loss() + baseline() + hung() + cancel_run() + [cap])
    assert v.figures["longest_backoff_gaps_s"][-2:] == [28.9, 57.3]
    assert v.figures["retransmissions"] == 277


def test_only_this_build_hosts_link_counts() -> None:
    other = "repro-ab12-build2"
    events = loss()
    events[2].fields["directions"].append({"src": S, "dst": other, "mechanism": "nft",
                                           "offered": 24000, "dropped": 10, "oversize": 0})
    p = Params(commit=COMMIT, budget_s=60.0, cancel_grace_s=5.0, loss=0.3, host=B)
    evs = sorted(events + baseline() + budget_exit(48.0, 128) + cancel_run(), key=lambda e: e.t)
    v = run_checker(check, evs, p)
    assert v.ok and len(v.figures["loss_achieved"]) == 2
    assert judge(events + baseline() + budget_exit(48.0, 128) + cancel_run()).outcome \
        is Outcome.INCONCLUSIVE  # without a host, every direction counts


def test_a_step_that_exits_but_leaves_git_running_fails() -> None:
    evs = [op(10.0, "checkout", "budget", "start"),
           op(40.0, "checkout", "budget", "exit", exit_code=124, elapsed_s=30.0, head="",
              left_running=[[300, "git", "git fetch"]])]
    v = judge(loss() + baseline() + evs + cancel_run())
    assert v.outcome is Outcome.FAIL and "left running: git (pid 300)" in v.reasons[0]


def pace(least: float = 102.4) -> list[Event]:
    return [ev(9.0, "pace", S, rate_kib_s=32.0, tree_bytes=int(least * 32768),
               least_transfer_s=least)]


def test_under_the_pace_a_step_that_gives_up_in_budget_passes() -> None:
    v = judge(loss() + pace() + baseline() + budget_exit(20.1, 124) + cancel_run())
    assert v.outcome is Outcome.PASS, v.describe()
    assert v.figures["pace_kib_s"] == 32.0 and v.figures["least_transfer_s"] == 102.4


def test_a_step_at_commit_sooner_than_the_pace_allows_is_inconclusive() -> None:
    # the pace did not hold (say the server ignored the hook): the budget was not exercised
    v = judge(loss() + pace() + baseline() + budget_exit(0.2, 0, COMMIT) + cancel_run())
    assert v.outcome is Outcome.INCONCLUSIVE, v.describe()
    assert "sooner than its tree" in v.reasons[0] and "did not hold" in v.reasons[0]
    # at COMMIT after the least transfer time: a real finish, a pass
    v = judge(loss() + pace(least=20.0) + baseline() + budget_exit(25.0, 0, COMMIT)
              + cancel_run())
    assert v.outcome is Outcome.PASS, v.describe()
    # an early failure is the step's own doing, not the pace's: in budget, a pass
    v = judge(loss() + pace() + baseline() + budget_exit(0.2, 128) + cancel_run())
    assert v.outcome is Outcome.PASS, v.describe()


def test_an_observed_hang_under_a_broken_pace_is_still_a_failure() -> None:
    early = [op(10.0, "checkout", "cancel", "start"),
             op(10.3, "checkout", "cancel", "exit", exit_code=0, elapsed_s=0.3, head=COMMIT)]
    v = judge(loss() + pace() + baseline() + hung() + early)
    assert v.outcome is Outcome.FAIL and "still running" in v.reasons[0]
    assert any("the cancel run had COMMIT after 0.3 s" in r for r in v.reasons)
    assert any("ended by itself at 0.3 s (exit 0)" in r for r in v.reasons)
