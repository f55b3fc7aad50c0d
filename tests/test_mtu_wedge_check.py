"""The mtu_wedge oracle on hand-written histories: every branch of the verdict."""

from __future__ import annotations

from dataclasses import replace

from repro.harness.checks import Outcome, run_checker
from repro.mtu_wedge.check import Params, check
from tests.histories import ev, heartbeat

T = "repro-ab12-target"
P = Params(target=T, streams=3, duration_s=8.0, max_gap_s=2.0)


def flood(start: float = 1.0, stop: float = 9.0, up: int = 3, moved: int = 50_000_000,
          streams: int = 3) -> list:
    events = [ev(start, "fault.start", T, fault="ssh_flood", measured={"streams_up": up})]
    for i in range(1, streams + 1):
        events.append(ev(start + 0.1, "stream", T, stream=i, up=i <= up, alive=True, bytes=0,
                         bytes_at_go=0))
        events.append(ev(stop - 0.1, "stream", T, stream=i, up=i <= up, alive=True,
                         bytes=moved, bytes_at_go=0))
    events.append(ev(stop, "fault.stop", T, fault="ssh_flood"))
    return events


def test_healthy_host_passes():
    v = check(heartbeat(T, 0, 10) + flood(), P)
    assert v.outcome is Outcome.PASS, v.reasons
    assert v.figures["streams_up"] == 3 and v.figures["longest_gap_s"] <= 0.25


def test_short_gap_within_limit_passes():
    v = check(heartbeat(T, 0, 10, down=(3.0, 4.0)) + flood(), P)
    assert v.outcome is Outcome.PASS
    assert 1.0 <= v.figures["longest_gap_s"] <= 1.5


def test_host_that_drops_off_fails_naming_host_gap_and_start():
    v = check(heartbeat(T, 0, 10, down=(2.5, 99)) + flood(), P)
    assert v.outcome is Outcome.FAIL
    (reason,) = v.reasons
    assert T in reason and "dropped off the network" in reason
    assert "for 7.76 s" in reason and "+1.25 s after the flood began" in reason
    assert "had not come back" in reason


def test_reboot_is_caught_even_when_host_answers_again():
    v = check(heartbeat(T, 0, 10, reboot_at=5.0) + flood(), P)
    assert v.outcome is Outcome.FAIL
    assert any("rebooted" in r and "boot id boot-a -> boot-b" in r for r in v.reasons)


def test_too_few_streams_on_reachable_host_is_inconclusive():
    v = check(heartbeat(T, 0, 10) + flood(up=2), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("only 2/3 ssh streams" in r for r in v.reasons)


def test_too_few_streams_because_host_vanished_is_a_failure():
    v = check(heartbeat(T, 0, 10, down=(1.5, 99)) + flood(up=2), P)
    assert v.outcome is Outcome.FAIL


def test_stream_that_moved_nothing_is_inconclusive():
    v = check(heartbeat(T, 0, 10) + flood(moved=1000), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("moved less than 1 MiB" in r for r in v.reasons)


def test_flood_cut_short_is_inconclusive():
    v = check(heartbeat(T, 0, 10) + flood(stop=4.0), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("lasted" in r for r in v.reasons)


def test_no_observation_is_never_a_pass():
    assert check(flood(), P).outcome is Outcome.INCONCLUSIVE
    assert check(heartbeat(T, 0, 10), P).outcome is Outcome.INCONCLUSIVE


def test_a_crashing_checker_gives_unknown():
    broken = [ev(1.0, "fault.start", T, fault="ssh_flood", measured="not a dict")]
    v = run_checker(check, heartbeat(T, 0, 10) + broken, P)
    assert v.outcome is Outcome.UNKNOWN and "checker crashed" in v.reasons[0]


def with_ssh_down(events: list, down: tuple[float, float]) -> list:
    """The same samples, with the ssh leg failing (TCP still answering) inside `down`."""
    out = []
    for e in events:
        if e.kind == "probe" and e.get("leg") == "ssh" and down[0] <= e.t < down[1]:
            e = ev(e.t, "probe", e.host, leg="ssh", ssh_ok=False, ok=False, boot_id=None)
        out.append(e)
    return out


def test_a_slow_sshd_on_a_reachable_host_is_not_a_wedge():
    v = check(with_ssh_down(heartbeat(T, 0, 10), (3.0, 7.0)) + flood(), P)
    assert v.outcome is Outcome.PASS, v.reasons
    assert v.figures["longest_ssh_freeze_s"] >= 4.0 and v.figures["longest_gap_s"] == 0.0


def test_sessions_frozen_far_past_the_limit_fail():
    v = check(with_ssh_down(heartbeat(T, 0, 30), (2.0, 25.0)) + flood(), P)
    assert v.outcome is Outcome.FAIL
    assert any("ssh sessions froze" in r for r in v.reasons)


def test_a_starved_observer_is_inconclusive():
    samples = [e for e in heartbeat(T, 0, 10) if not 3.0 < e.t < 6.0]
    v = check(samples + flood(), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("observer was starved" in r for r in v.reasons)


def test_an_ssh_leg_silent_past_the_freeze_limit_is_inconclusive_never_a_pass():
    # TCP samples throughout, the ssh leg's last answer at 2 s, its next sample only at 28 s:
    # a freeze there could have gone unseen (seen in CI when a round trip hung unbounded)
    samples = [e for e in heartbeat(T, 0, 30) if e.get("leg") == "tcp" or not 2.0 < e.t < 28.0]
    v = check(samples + flood(), P)
    assert v.outcome is Outcome.INCONCLUSIVE, v.reasons
    assert any("without a sample of its ssh session" in r for r in v.reasons)


def test_sessions_frozen_while_tcp_answers_fail_even_when_streams_moved_nothing():
    # the postmortem's "logged-in sessions became instantly unresponsive": TCP answers, the
    # frozen sshd starves the streams too. Before: inconclusive (streams idle, host not gone
    # from TCP) and re-run into a pass. Now: the freeze is a failure, the shortfall beside it.
    v = check(with_ssh_down(heartbeat(T, 0, 30), (2.0, 25.0)) + flood(moved=1000), P)
    assert v.outcome is Outcome.FAIL, v.reasons
    assert "ssh sessions froze" in v.reasons[0]
    assert any("moved less than 1 MiB" in r for r in v.reasons[1:])


def test_a_freeze_beside_a_starved_observer_is_still_a_failure():
    samples = [e for e in with_ssh_down(heartbeat(T, 0, 30), (2.0, 25.0))
               if not 10.0 < e.t < 14.0]
    v = check(samples + flood(), P)
    assert v.outcome is Outcome.FAIL and "ssh sessions froze" in v.reasons[0]
    assert any("observer was starved" in r for r in v.reasons[1:])


def test_a_target_gone_from_the_network_excuses_every_shortfall_of_the_flood():
    # the flood stopped early, with 2 of 3 streams and next to no data: the target's collapse
    # explains all of it, so only the gap is reported, never "did not take effect"
    v = check(heartbeat(T, 0, 10, down=(2.0, 99)) + flood(stop=4.0, up=2, moved=1000), P)
    assert v.outcome is Outcome.FAIL
    assert len(v.reasons) == 1 and "dropped off the network" in v.reasons[0]


def test_sessions_frozen_during_the_flood_fail_even_when_they_answer_as_it_stops():
    # once excused as "the heartbeat measured the flood" (a TCG guest under 20 unpaced
    # streams); the flood is now paced there, so a session frozen past the limit while TCP
    # answers is the host's, on every backend (it was the pass of a 12 s sshd freeze)
    flood_events = flood(start=1.0, stop=18.0)
    v = check(with_ssh_down(heartbeat(T, 0, 26), (4.0, 18.5)) + flood_events, P)
    assert v.outcome is Outcome.FAIL, v.reasons
    assert "ssh sessions froze for 14.75 s" in v.reasons[0] and "until +17.51 s" in v.reasons[0]


def test_sessions_frozen_before_the_flood_began_fail():
    # the freeze at the logins: it ended before the go, while no stream was moving yet
    v = check(with_ssh_down(heartbeat(T, 0, 30), (1.0, 13.5)) + flood(start=14.0, stop=22.0), P)
    assert v.outcome is Outcome.FAIL, v.reasons
    assert "ssh sessions froze for 12.75 s" in v.reasons[0]
    assert "from -13.24 s after the flood began" in v.reasons[0]


def test_sessions_still_frozen_after_the_flood_stopped_fail():
    v = check(with_ssh_down(heartbeat(T, 0, 26), (4.0, 24.0)) + flood(stop=12.0), P)
    assert v.outcome is Outcome.FAIL
    assert "ssh sessions froze" in v.reasons[0] and "until +" in v.reasons[0]


def test_a_freeze_still_open_when_observation_ended_is_a_failure():
    # an observed freeze over the limit is a failure, however soon after the flood it was seen
    v = check(with_ssh_down(heartbeat(T, 0, 14), (2.0, 99)) + flood(stop=12.0), P)
    assert v.outcome is Outcome.FAIL, v.reasons
    assert "had not answered again when observation ended" in v.reasons[0]


def flowing(start: float = 1.0, stop: float = 9.0, streams: int = 3, every: float = 0.5,
            stalled: tuple[float, float] | None = None, which: tuple[int, ...] = (1, 2, 3),
            rate: int = 10_000_000) -> list:
    """A flood whose streams are sampled every `every` s, each moving `rate` B/s, except the
    streams `which` inside `stalled` (their counters stand still)."""
    events = [ev(start, "fault.start", T, fault="ssh_flood", measured={"streams_up": streams})]
    t = start + 0.1
    moved = dict.fromkeys(range(1, streams + 1), 0)
    while t < stop:
        for i in moved:
            if t > start + 0.1 and not (stalled and i in which and stalled[0] <= t < stalled[1]):
                moved[i] += round(rate * every)
            events.append(ev(round(t, 3), "stream", T, stream=i, up=True, alive=True,
                             bytes=moved[i], bytes_at_go=0))
        t += every
    events.append(ev(stop, "fault.stop", T, fault="ssh_flood"))
    return events


def test_streams_that_keep_moving_pass_and_their_longest_stall_is_a_figure():
    v = check(heartbeat(T, 0, 16) + flowing(), P)
    assert v.outcome is Outcome.PASS, v.reasons
    assert v.figures["longest_stream_stall_s"] == 0.0


def test_streams_without_progress_past_the_limit_while_tcp_answers_fail():
    # the flood's own view of a frozen sshd: the heartbeat saw nothing over its limit
    v = check(with_ssh_down(heartbeat(T, 0, 16), (3.0, 9.0)) + flowing(stalled=(3.0, 9.0)), P)
    assert v.outcome is Outcome.FAIL, v.reasons
    (reason,) = v.reasons
    assert "none of its 3 ssh streams moved for 6.00 s (limit 4 s)" in reason
    assert "from +1.60 s after the flood began" in reason
    assert v.figures["longest_flood_stall_s"] == 6.0


def test_one_stream_waiting_while_the_others_move_passes_within_the_session_limit():
    # a CPU-starved TCG guest: one flow waited 3.5 s (a sampling round) as the others moved
    v = check(heartbeat(T, 0, 16) + flowing(stalled=(2.0, 7.5), which=(2,)), P)
    assert v.outcome is Outcome.PASS, v.reasons
    assert v.figures["longest_stream_stall_s"] == 5.5
    assert v.figures["longest_flood_stall_s"] == 0.0


def test_one_stream_stalled_as_long_as_a_frozen_session_fails():
    v = check(heartbeat(T, 0, 28) + flowing(stop=20.0, stalled=(2.0, 14.0), which=(2,)),
              replace(P, duration_s=19.0))
    assert v.outcome is Outcome.FAIL, v.reasons
    assert "1 of its ssh streams [2] moved no data for 12.00 s (limit 10 s)" in v.reasons[0]


def test_a_stall_within_the_limit_passes():
    v = check(heartbeat(T, 0, 16) + flowing(stalled=(3.0, 6.0)), P)
    assert v.outcome is Outcome.PASS, v.reasons
    assert v.figures["longest_stream_stall_s"] == 3.0


def test_streams_stalled_inside_a_network_gap_are_that_gap():
    v = check(heartbeat(T, 0, 16, down=(3.0, 99)) + flowing(stalled=(3.0, 99)), P)
    assert v.outcome is Outcome.FAIL
    (reason,) = v.reasons
    assert "dropped off the network" in reason


def test_a_dead_stream_is_not_a_stall():
    events = flowing()
    events = [e for e in events if not (e.kind == "stream" and e.get("stream") == 3 and e.t > 4)]
    events += [ev(t, "stream", T, stream=3, up=True, alive=False, bytes=35_000_000,
                  bytes_at_go=0) for t in (4.5, 6.0, 8.5)]
    v = check(heartbeat(T, 0, 16) + events, P)
    assert v.outcome is Outcome.PASS, v.reasons


def test_a_stream_never_released_is_the_flood_not_taking_effect_not_a_stall():
    # seen on a loaded TCG guest: streams that logged in only after the go never moved (their
    # counter stayed at the 4 bytes of their pid file)
    events = [e for e in flowing() if not (e.kind == "stream" and e.get("stream") == 3)]
    events += [ev(t, "stream", T, stream=3, up=True, alive=True, bytes=4, bytes_at_go=0)
               for t in (2.0, 5.0, 8.5)]
    v = check(heartbeat(T, 0, 16) + events, P)
    assert v.outcome is Outcome.INCONCLUSIVE, v.reasons
    assert v.reasons == ("streams [3] moved less than 1 MiB: the flood did not take effect",)
