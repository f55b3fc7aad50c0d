"""The cache_restore oracle on hand-written histories: every branch of the verdict."""

from __future__ import annotations

from typing import Any

from repro.harness.checks import Outcome
from repro.harness.history import Event

from ..check import FAULT, Params, check, peak_streams

B = "repro-ab12-build"
TS = tuple(f"repro-ab12-t{i:02d}" for i in range(1, 4))
P = Params(build=B, targets=TS, budget_s=60.0, max_gap_s=2.0)
MANIFEST = {f"deps/file{i:02d}.bin": f"h{i:02d}" for i in range(10)}


def ev(t: float, kind: str, host: str = B, **fields: Any) -> Event:
    return Event(t=round(t, 3), kind=kind, host=host, fields=fields)


def history(exit_code: int | None = 0, output: str = "", elapsed: float = 5.0,
            partial: dict[str, int] | None = None, corrupt: str = "",
            cut: str | None = TS[1], fired: bool = True, down: tuple[float, float] | None = None,
            every: float = 0.25, end: float = 12.0, slow: tuple[float, float] | None = None
            ) -> list[Event]:
    """The cache, heartbeats of the build host every `every` s (failing inside `down`; ssh
    round trips of 1.5 s, the host starved of CPU, inside `slow`),
    the step from t=2 to 2+elapsed with `exit_code` and `output`, the cut armed on `cut`,
    and each target's tree: whole, or only its first `partial[target]` files."""
    events = [ev(0.0, "cache", "", size=1000, files=MANIFEST), ev(0.5, "observe", mtu=1400)]
    for i in range(1, round(end / every) + 1):
        t = round(i * every, 3)
        ok = not (down and down[0] <= t < down[1])
        rtt = 1.5 if slow and slow[0] <= t < slow[1] else 0.02
        events += [ev(t, "probe", leg="tcp", ok=ok, tcp_ok=ok),
                   ev(t + 0.01, "probe", leg="ssh", ok=ok, boot_id="b1" if ok else None,
                      rtt_s=rtt if ok else None)]
    if cut:
        events += [ev(2.0, "fault.start", cut, fault=FAULT, params={"after_bytes": 500},
                      measured={}, shortfall=""),
                   ev(2.0 + elapsed, "fault.measure", cut, fault=FAULT, fired=fired,
                      seen_bytes=501 if fired else 20, resets=1, after_bytes=500, size=1000),
                   ev(2.1 + elapsed, "fault.stop", cut, fault=FAULT)]
    events += [ev(2.0, "op", name="restore_start"),
               ev(2.0 + elapsed, "op", name="restore", exit_code=exit_code, elapsed_s=elapsed,
                  output=output)]
    for target in TS:
        keep = (partial or {}).get(target, len(MANIFEST))
        files = dict(list(MANIFEST.items())[:keep])
        if corrupt == target and files:
            files[next(iter(files))] = "bad"
        events.append(ev(end, "tree", target, files=files, answered=True))
    return sorted(events, key=lambda e: e.t)


def test_a_whole_restore_with_nothing_cut_passes() -> None:
    v = check(history(cut=None), P)
    assert v.outcome is Outcome.PASS, v.reasons
    assert v.figures["targets_complete"] == 3 and v.figures["files_lost"] == 0
    assert v.figures["build_mtu"] == 1400


def test_a_partial_tree_behind_exit_0_is_data_loss_naming_the_files() -> None:
    v = check(history(exit_code=0, partial={TS[1]: 4}), P)
    assert v.outcome is Outcome.FAIL
    (reason,) = v.reasons
    assert reason.startswith(f'data loss: the restore exited 0 ("restored") but {TS[1]} holds '
                             "4 of 10 files intact: 6 missing (deps/file04.bin, deps/file05.bin")
    assert v.figures["lost"] == {TS[1]: [f"deps/file{i:02d}.bin" for i in range(4, 10)]}
    assert v.figures["files_lost"] == 6


def test_a_corrupt_file_behind_exit_0_is_data_loss() -> None:
    v = check(history(exit_code=0, corrupt=TS[0]), P)
    assert v.outcome is Outcome.FAIL
    assert "none missing; 1 corrupt (deps/file00.bin)" in v.reasons[0]


def test_a_failure_naming_the_target_it_could_not_restore_passes() -> None:
    v = check(history(exit_code=1, output=f"restore failed: {TS[1]}\n", partial={TS[1]: 4}), P)
    assert v.outcome is Outcome.PASS, v.reasons
    assert v.figures["targets_incomplete"] == [TS[1]] and v.figures["lost"] == {}


def test_a_failure_not_naming_an_incomplete_target_fails() -> None:
    out = f"restore failed: {TS[1]}\n"  # t01 is a prefix of nothing here, t03 is not named
    v = check(history(exit_code=1, output=out, partial={TS[1]: 4, TS[2]: 0}), P)
    assert v.outcome is Outcome.FAIL
    (reason,) = v.reasons
    assert f"without naming {TS[2]}" in reason and "10 missing" in reason


def test_a_name_inside_a_longer_word_does_not_count() -> None:
    v = check(history(exit_code=1, output=f"failed: {TS[1]}0 {TS[1]}.bak\n",
                      partial={TS[1]: 4}), P)
    assert v.outcome is Outcome.FAIL and f"without naming {TS[1]}" in v.reasons[0]


def test_a_failure_with_nothing_cut_fails() -> None:
    v = check(history(exit_code=1, output="ssh: connect refused\n", cut=None), P)
    assert v.outcome is Outcome.FAIL
    assert "although nothing was cut: ssh: connect refused" in v.reasons[0]


def test_over_budget_fails() -> None:
    v = check(history(exit_code=0, elapsed=75.0, end=90.0, cut=None), P)
    assert v.outcome is Outcome.FAIL and "ran 75 s, over its 60 s budget" in v.reasons[0]


def test_a_step_killed_at_the_budget_fails() -> None:
    v = check(history(exit_code=None, elapsed=70.0, end=90.0, cut=None,
                      partial={TS[0]: 3}), P)
    assert v.outcome is Outcome.FAIL
    assert v.reasons == ("the restore was still running 70 s after it started and was killed "
                         "(budget 60 s)",)


def test_the_build_host_dropping_off_the_network_fails() -> None:
    v = check(history(exit_code=1, output=f"restore failed: {TS[1]}", partial={TS[1]: 4},
                      down=(4.0, 9.0)), P)
    assert v.outcome is Outcome.FAIL
    assert v.reasons[0].startswith(f"{B} dropped off the network for 5.2")


def test_a_reboot_of_the_build_host_fails() -> None:
    events = history(exit_code=1, output=f"restore failed: {TS[1]}", partial={TS[1]: 4})
    for e in events:
        if e.kind == "probe" and e.get("leg") == "ssh" and e.t > 6:
            e.fields["boot_id"] = "b2"
    v = check(events, P)
    assert v.outcome is Outcome.FAIL and "rebooted during the restore" in v.reasons[0]


def test_a_cut_that_did_not_land_is_inconclusive() -> None:
    v = check(history(fired=False), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert f"the cut of {TS[1]} did not land mid-stream: it received 20 bytes" in v.reasons[0]


def test_data_loss_outranks_a_cut_that_did_not_land() -> None:
    v = check(history(exit_code=0, partial={TS[0]: 2}, fired=False), P)
    assert v.outcome is Outcome.FAIL
    assert v.reasons[0].startswith("data loss") and "did not land" in v.reasons[-1]


def test_a_starved_observer_is_inconclusive() -> None:
    events = [e for e in history(cut=None) if not (e.kind == "probe" and 4.0 < e.t < 8.0)]
    v = check(events, P)
    assert v.outcome is Outcome.INCONCLUSIVE and "observer was starved" in v.reasons[0]


def test_no_restore_step_is_inconclusive() -> None:
    events = [e for e in history() if e.kind != "op"]
    assert check(events, P).outcome is Outcome.INCONCLUSIVE


def test_peak_streams_counts_targets_receiving_in_the_same_interval() -> None:
    def round_(t: float, sent: dict[str, int]) -> list[Event]:
        return [ev(t, "series", h, panel="restore", name="MB sent", bytes=n)
                for h, n in sent.items()]
    parallel = round_(1, {"a": 0, "b": 0}) + round_(2, {"a": 200_000, "b": 300_000})
    serial = round_(1, {"a": 0, "b": 0}) + round_(2, {"a": 200_000, "b": 0}) + \
        round_(3, {"a": 400_000, "b": 1000}) + round_(4, {"a": 400_000, "b": 900_000})
    assert peak_streams(parallel) == 2 and peak_streams(serial) == 1


# -- the broken variants (fixtures/cache_restore/broken_*.sh), on their histories ------

def test_always_exit_1_naming_every_target_is_over_reporting() -> None:
    """broken_always_fail.sh: restores every target, checks nothing, says all failed."""
    v = check(history(exit_code=1, output="could not restore: " + " ".join(TS) + "\n",
                      partial={TS[1]: 4}), P)
    assert v.outcome is Outcome.FAIL
    assert v.reasons == tuple(
        f"over-reporting: the restore failed (exit 1) naming {t}, whose tree is complete "
        "(10 of 10 files intact)" for t in (TS[0], TS[2]))


def test_always_exit_1_with_nothing_cut_fails_twice_over() -> None:
    v = check(history(exit_code=1, output="could not restore: " + " ".join(TS), cut=None), P)
    assert v.outcome is Outcome.FAIL
    assert sum(r.startswith("over-reporting") for r in v.reasons) == 3
    assert "although nothing was cut" in v.reasons[-1]


def test_a_complete_target_named_once_among_the_lost_is_over_reporting() -> None:
    v = check(history(exit_code=1, output=f"restore failed: {TS[1]}\nretrying {TS[0]}\n",
                      partial={TS[1]: 4}), P)
    assert v.outcome is Outcome.FAIL
    assert v.reasons == (f"over-reporting: the restore failed (exit 1) naming {TS[0]}, whose "
                         "tree is complete (10 of 10 files intact)",)


def test_exit_0_naming_every_target_is_not_over_reporting() -> None:
    v = check(history(exit_code=0, output="".join(f"restored {t}\n" for t in TS), cut=None), P)
    assert v.outcome is Outcome.PASS, v.reasons


def test_giving_up_at_the_cut_naming_the_rest_fails_on_the_uncut_target() -> None:
    """broken_give_up.sh: stops at the first failure and names it and every target left."""
    v = check(history(exit_code=1, output=f"could not restore: {TS[1]} {TS[2]}\n",
                      partial={TS[1]: 4, TS[2]: 0}), P)
    assert v.outcome is Outcome.FAIL
    assert v.reasons == (f"the restore failed (exit 1) and left {TS[2]} incomplete, which was "
                         f"not cut (only {TS[1]} was): 10 missing (deps/file00.bin, "
                         "deps/file01.bin, deps/file02.bin, deps/file03.bin, deps/file04.bin, "
                         "deps/file05.bin, deps/file06.bin, deps/file07.bin and 2 more)",)


def test_giving_up_at_the_cut_naming_only_it_fails_as_unnamed() -> None:
    v = check(history(exit_code=1, output=f"could not restore: {TS[1]}\n",
                      partial={TS[1]: 4, TS[2]: 0}), P)
    assert v.outcome is Outcome.FAIL
    assert v.reasons == (f"the restore failed (exit 1) without naming {TS[2]}, which it left "
                         "incomplete: 10 missing (deps/file00.bin, deps/file01.bin, "
                         "deps/file02.bin, deps/file03.bin, deps/file04.bin, deps/file05.bin, "
                         "deps/file06.bin, deps/file07.bin and 2 more)",)


def test_an_uncut_target_lost_while_the_cut_missed_still_fails() -> None:
    v = check(history(exit_code=1, output=f"failed: {TS[0]}\n", partial={TS[0]: 3},
                      fired=False), P)
    assert v.outcome is Outcome.FAIL
    assert v.reasons[0].startswith(f"the restore failed (exit 1) and left {TS[0]} incomplete")
    assert "did not land mid-stream" in v.reasons[-1]


# -- the budget, with CPU starvation taken out -----------------------------------------------

def test_over_budget_only_through_cpu_starvation_is_inconclusive() -> None:
    v = check(history(exit_code=0, elapsed=75.0, end=90.0, cut=None, slow=(10.0, 40.0)), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert v.figures["starved_s"] == 30.0
    assert v.reasons == ("the restore ran at 75 s, over its 60 s budget, but its build host "
                         "was starved of CPU for 30.0 s of it (ssh round trips over 1 s or "
                         "unanswered): the budget cannot be judged",)


def test_over_budget_beyond_its_starvation_fails() -> None:
    v = check(history(exit_code=0, elapsed=75.0, end=90.0, cut=None, slow=(10.0, 15.0)), P)
    assert v.outcome is Outcome.FAIL
    assert v.reasons == ("the restore ran 75 s, over its 60 s budget; 5.0 s of it starved of "
                         "CPU, still over without it",)


def test_a_killed_step_starved_throughout_is_inconclusive() -> None:
    v = check(history(exit_code=None, elapsed=70.0, end=90.0, cut=None, slow=(2.0, 72.0)), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert v.reasons[0].startswith("the restore was killed at 70 s, over its 60 s budget")


def test_unanswered_ssh_rounds_while_tcp_answers_count_as_starved() -> None:
    events = history(exit_code=0, elapsed=75.0, end=90.0, cut=None)
    for e in events:
        if e.kind == "probe" and e.get("leg") == "ssh" and 20.0 < e.t < 45.0:
            e.fields.update(ok=False, ssh_ok=False, rtt_s=None, boot_id=None)
    v = check(events, P)
    assert v.outcome is Outcome.INCONCLUSIVE and v.figures["starved_s"] == 25.0


def test_starvation_outside_the_step_is_not_counted() -> None:
    v = check(history(exit_code=0, elapsed=75.0, end=90.0, cut=None, slow=(78.0, 90.0)), P)
    assert v.outcome is Outcome.FAIL and v.figures["starved_s"] == 0.0
