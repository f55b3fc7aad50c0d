"""The kernel_panic oracle on hand-written histories: every branch of the verdict."""

from __future__ import annotations

from repro.harness.checks import Outcome, run_checker
from repro.harness.history import Event
from repro.kernel_panic.check import Params, check, loss_evidence
from tests.histories import ev, heartbeat, ssh_leg_down

H = "repro-ab12-kp-under-test"
P = Params(host=H, fill_to=0.95, rounds=2)


def rounds(n: int = 2, fraction: float = 0.97, start: float = 5.0, errors: tuple = (),
           host_lost: bool = False, shortfall: str = "", fsck_ok: bool = True) -> list[Event]:
    out = []
    t = start
    for r in range(1, n + 1):
        out += [ev(t, "op", H, name="volume_setup", round=r, ok=True, exit_code=0),
                ev(t + 0.5, "op", H, name="workspace", round=r, ok=True,
                   device="/dev/mapper/vg-build"),
                ev(t + 1, "fault.start", H, fault="disk_fill", params={}),
                ev(t + 9, "fault.measure", H, fault="disk_fill", round=r, fraction=fraction,
                   errors=list(errors), host_lost=host_lost, shortfall=shortfall),
                ev(t + 9.5, "fault.stop", H, fault="disk_fill"),
                ev(t + 10, "op", H, name="fsck", round=r, ok=fsck_ok, exit_code=0 if fsck_ok
                   else 4, detail="" if fsck_ok else "Block bitmap differences")]
        t += 12
    return out


def test_fixed_configuration_passes():
    v = check(heartbeat(H, 0, 30, every=1.0) + rounds(), P)
    assert v.outcome is Outcome.PASS, v.reasons
    assert v.figures["fill_reached"] == [0.97, 0.97]


def test_panic_on_the_console_fails_with_the_kernel_line():
    line = "[  116.5] Kernel panic - not syncing: EXT4-fs (device dm-3): panic forced after error"
    events = heartbeat(H, 0, 30, every=1.0, down=(10.5, 20), reboot_at=20) + rounds(1) + [
        ev(9.0, "kernel", H, pattern="snapshot_invalidated",
           line="device-mapper: snapshots: Invalidating snapshot: Unable to allocate exception."),
        ev(10.0, "kernel", H, pattern="panic", line=line),
        ev(10.1, "host", H, source="qemu", event="panicked"),
        ev(11.2, "host", H, source="qemu", event="reset"),
        ev(11.21, "host", H, source="qemu", event="reset"),
        ev(12.0, "host", H, source="console", event="boot", boot=2)]
    v = check(events, P)
    assert v.outcome is Outcome.FAIL
    assert any(r.startswith("kernel log: panic") and "panic forced" in r for r in v.reasons)
    assert any(r.startswith("kernel log: snapshot_invalidated") for r in v.reasons)
    assert sum("QEMU reset the guest" in r for r in v.reasons) == 1  # duplicates collapsed
    assert any("boot id boot-a -> boot-b" in r for r in v.reasons)
    assert any("heartbeat lost the host" in r for r in v.reasons)
    assert v.figures["heartbeat_miss_after_panic_s"] == 1.0


def test_reboot_seen_only_by_the_boot_id_fails():
    """The postmortem's blind spot: the host came straight back up."""
    v = check(heartbeat(H, 0, 30, every=1.0, reboot_at=15) + rounds(), P)
    assert v.outcome is Outcome.FAIL
    assert any("rebooted: boot id" in r for r in v.reasons)


def test_one_or_two_missed_samples_are_tcg_stalls_not_death():
    v = check(heartbeat(H, 0, 30, every=1.0, down=(10.5, 12.5)) + rounds(), P)
    assert v.outcome is Outcome.PASS, v.reasons
    v = check(heartbeat(H, 0, 30, every=1.0, down=(10.5, 13.5)) + rounds(), P)
    assert v.outcome is Outcome.FAIL


def test_dirty_filesystem_fails():
    v = check(heartbeat(H, 0, 30, every=1.0) + rounds(fsck_ok=False), P)
    assert v.outcome is Outcome.FAIL
    assert any("filesystem not clean" in r for r in v.reasons)


def test_io_errors_of_writers_fail():
    v = check(heartbeat(H, 0, 30, every=1.0)
              + rounds(errors=("writer 3: error: Input/output error",)), P)
    assert v.outcome is Outcome.FAIL


def test_failed_volume_setup_fails():
    failed = ev(5, "op", H, name="volume_setup", round=1, ok=False, exit_code=5,
                detail="vgcreate: not found")
    events = [*heartbeat(H, 0, 10, every=1.0), failed]
    v = check(events, P)
    assert v.outcome is Outcome.FAIL
    assert any("volume_setup failed in round 1" in r for r in v.reasons)


def test_fill_short_of_target_is_inconclusive():
    v = check(heartbeat(H, 0, 30, every=1.0)
              + rounds(fraction=0.5, shortfall="fill reached 50.0%, short of 95%"), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("did not take effect" in r for r in v.reasons)


def test_fill_cut_short_by_the_host_dying_is_the_incident():
    events = heartbeat(H, 0, 30, every=1.0, down=(8, 30)) + rounds(1, fraction=0.1,
                                                                    host_lost=True)
    v = check(events, P)
    assert v.outcome is Outcome.FAIL
    assert not any("did not take effect" in r for r in v.reasons)


def test_no_fill_or_no_heartbeat_is_inconclusive():
    assert check(heartbeat(H, 0, 30, every=1.0), P).outcome is Outcome.INCONCLUSIVE
    assert check(rounds(), P).outcome is Outcome.INCONCLUSIVE


def test_fewer_rounds_than_asked_is_inconclusive():
    v = check(heartbeat(H, 0, 30, every=1.0) + rounds(1), P)
    assert v.outcome is Outcome.INCONCLUSIVE


def test_other_hosts_are_ignored_and_a_crashing_checker_is_unknown():
    other = [ev(10, "kernel", "repro-ab12-other", pattern="panic", line="Kernel panic")]
    assert check(heartbeat(H, 0, 30, every=1.0) + rounds() + other, P).outcome is Outcome.PASS
    broken = [ev(5, "fault.measure", H, fault="disk_fill", fraction="not a number")]
    assert run_checker(check, broken, P).outcome is Outcome.UNKNOWN


# Host loss needs evidence other than the fill's own polls (issue 10, finding 2): the fill
# marked the host lost after two slow ssh polls, and the checker then skipped every shortfall
# and round-count rule, so a healthy host filled to 10 % in one of two rounds passed.

def lost_fill(shortfall: str = "") -> list[Event]:
    """One round whose fill stopped at 10 % because its ssh polls went unanswered."""
    return rounds(1, fraction=0.10, host_lost=True, shortfall=shortfall)[:-1]  # no fsck


def test_healthy_host_with_slow_polls_marked_lost_is_inconclusive_not_pass():
    # the heartbeat's TCP leg answers throughout; only ssh is slow while the writers run
    events = ssh_leg_down(heartbeat(H, 0, 30, every=1.0), 7, 14) + lost_fill()
    assert loss_evidence(events, P) == []
    v = check(events, P)
    assert v.outcome is Outcome.INCONCLUSIVE, v.describe()
    assert any(r.startswith("round 1: fill reached 10.0%") and "did not take effect" in r
               and "nothing else saw the host die" in r for r in v.reasons), v.reasons
    assert "only 0 of 2 rounds completed" in v.reasons
    assert v.figures["fill_polls_lost"] == 1 and v.figures["host_loss_evidence"] == []


def test_slow_polls_with_the_shortfall_recorded_are_inconclusive_too():
    events = heartbeat(H, 0, 30, every=1.0) + lost_fill(
        shortfall="fill reached 10.0% of the filesystem, short of 95%")
    v = check(events, P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert sum("fill reached 10.0%" in r for r in v.reasons) == 1


def test_slow_polls_after_the_fill_reached_its_target_leave_the_round_incomplete():
    events = heartbeat(H, 0, 30, every=1.0) + rounds(1, fraction=0.97, host_lost=True)[:-1]
    v = check(events, P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("the round did not complete" in r for r in v.reasons)


def _no_shortfall_reasons(reasons: tuple[str, ...]) -> bool:
    return not any("did not take effect" in r or "rounds completed" in r for r in reasons)


def test_lost_fill_with_a_reboot_fails():
    events = heartbeat(H, 0, 30, every=1.0, reboot_at=18) + lost_fill()
    assert loss_evidence(events, P) == ["boot id changed"]
    v = check(events, P)
    assert v.outcome is Outcome.FAIL
    assert any("rebooted: boot id boot-a -> boot-b" in r for r in v.reasons)
    assert _no_shortfall_reasons(v.reasons)


def test_lost_fill_with_a_panic_on_the_console_fails():
    panic = ev(12.0, "kernel", H, pattern="panic",
               line="Kernel panic - not syncing: EXT4-fs (device dm-3): panic forced after error")
    events = heartbeat(H, 0, 30, every=1.0) + lost_fill() + [panic]
    assert loss_evidence(events, P) == ["kernel panic"]
    v = check(events, P)
    assert v.outcome is Outcome.FAIL
    assert any(r.startswith("kernel log: panic") for r in v.reasons)
    assert _no_shortfall_reasons(v.reasons)


def test_lost_fill_with_heartbeat_misses_fails():
    events = heartbeat(H, 0, 30, every=1.0, down=(12, 30)) + lost_fill()
    assert loss_evidence(events, P)[0].startswith("heartbeat:")
    v = check(events, P)
    assert v.outcome is Outcome.FAIL
    assert any("heartbeat lost the host" in r for r in v.reasons)
    assert _no_shortfall_reasons(v.reasons)


def test_two_heartbeat_misses_are_no_evidence_of_loss():
    events = heartbeat(H, 0, 30, every=1.0, down=(12, 14)) + lost_fill()
    assert loss_evidence(events, P) == []
    assert check(events, P).outcome is Outcome.INCONCLUSIVE
