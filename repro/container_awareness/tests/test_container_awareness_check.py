"""The container_awareness oracle on hand-written histories: every branch of the verdict."""

from __future__ import annotations

from typing import Any

from repro.harness.checks import Outcome
from repro.harness.history import Event

from ..check import Params, check, percentile
from ..load import sized_rate

S = "repro-ab12-service"
P = Params(host=S, rate=10.0, duration_s=10.0, min_throughput=0.9, p99_ms=1000.0,
           timeout_s=5.0, cpus=1.0)


def ev(t: float, kind: str, host: str = S, **fields: Any) -> Event:
    return Event(t=round(t, 3), kind=kind, host=host, fields=fields)


def history(latency: float = 0.1, answered: float = 1.0, n: int = 100, started: bool = True,
            failed: bool = False, stalls: tuple[tuple[float, float], ...] = (),
            processors: int = 1, quota: float | None = 1.0, runner: int | None = 2,
            detected: int | None = 1, rate: float = P.rate) -> list[Event]:
    """The quota as the cgroup read back, the CPUs the container can run on, what the
    harness's detecting JVM saw (the fault), what the JVM under test saw, the service's
    start, then `n` requests sent 1/rate apart from t=2: the first `answered` share of
    them answered after `latency`, the rest timed out."""
    events = [ev(0.5, "observe", what="cpu_quota", cpus=quota),
              ev(0.55, "observe", what="runner", cpus=runner, machine_cpus=2),
              ev(0.58, "observe", what="detection", available_processors=detected),
              ev(0.6, "observe", what="jvm", available_processors=processors),
              ev(0.8, "observe", what="pools", available_processors=processors,
                 workers=16, connections=2 * processors + 1)]
    if failed:
        return [*events, ev(1.0, "host", event="service_failed", waited_s=60.0,
                            output="Unrecognized VM option 'Bogus'\nError: could not create")]
    if started:
        events.append(ev(1.0, "host", event="started", what="service", pid=7))
    for i in range(n):
        sent = 2.0 + i / rate
        ok = i < answered * n
        took = latency if ok else P.timeout_s
        events.append(ev(sent + took, "op", name="request", ok=ok, latency_s=took, sent_t=sent,
                         lag_s=0.0, status="200" if ok else "",
                         error="" if ok else "no answer within 5 s"))
    events += [ev(b, "observer", name="stall", start=a, end=b) for a, b in stalls]
    events += [ev(2.0 + i, "series", panel="pools", name="live threads", value=20 + i)
               for i in range(3)]
    return sorted(events, key=lambda e: e.t)


def test_every_request_answered_quickly_passes_with_what_the_jvm_saw() -> None:
    v = check(history(processors=2), P)
    assert v.outcome is Outcome.PASS, v.reasons
    f = v.figures
    assert f["available_processors"] == 2 and f["connections"] == 5 and f["workers"] == 16
    assert f["cpu_quota"] == 1.0 and f["live_threads_max"] == 22
    assert f["runner_cpus"] == 2 and f["detected_processors"] == 1
    assert f["delivered_fraction"] == 1.0 and f["delivered_rps"] == 10.0
    assert f["p99_ms"] == 100.0 and f["timeouts"] == 0


def test_constrained_throughput_fails_naming_the_pools() -> None:
    v = check(history(answered=0.3), P)
    assert v.outcome is Outcome.FAIL
    assert "delivered 30% of the offered load (3.0 of 10.0 requests/s; limit 90%)" in \
        v.reasons[0]
    assert "70 of 100 requests were not answered within 5 s" in v.reasons[0]
    assert "available processors 1, workers 16, connections 3" in v.reasons[0]
    assert v.figures["timeouts"] == 70


def test_slow_answers_fail_on_latency_alone() -> None:
    v = check(history(latency=2.0), P)
    assert v.outcome is Outcome.FAIL
    (reason,) = v.reasons
    assert "99th percentile latency was 2000 ms (limit 1000 ms)" in reason


def test_a_service_that_does_not_start_fails_with_its_output() -> None:
    v = check(history(failed=True), P)
    assert v.outcome is Outcome.FAIL
    assert "did not answer HTTP within 60.0 s" in v.reasons[0]
    assert "could not create" in v.reasons[0]


def test_a_jvm_that_exits_at_start_fails_saying_so() -> None:
    events = history(failed=True)
    events[-1].fields["exited"] = True
    v = check(events, P)
    assert v.outcome is Outcome.FAIL
    assert "exited before it answered HTTP: Unrecognized VM option 'Bogus'" in v.reasons[0]


def test_no_service_start_is_inconclusive() -> None:
    v = check(history(started=False, n=0), P)
    assert v.outcome is Outcome.INCONCLUSIVE and "never started" in v.reasons[0]


def test_load_not_offered_is_inconclusive() -> None:
    v = check(history(n=50), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert "only 50 of the 100 requests asked were offered" in v.reasons[0]


def test_requests_across_an_observer_stall_are_excused_from_latency() -> None:
    # a 1.5 s stall at t=5: the requests in flight then look 1.5 s late; few enough to excuse
    events = history(latency=0.1, stalls=((5.0, 6.5),))
    late = [e for e in events if e.kind == "op" and 5.0 <= float(e.get("sent_t")) <= 6.5]
    for e in late:
        e.fields["latency_s"] = 1.6
    v = check(events, P)
    assert v.outcome is Outcome.PASS, v.reasons
    assert v.figures["excused_requests"] == len(late) + 1  # and the one sent just before
    assert v.figures["observer_stall_s"] == 1.5


def test_a_long_stall_of_the_observer_is_inconclusive_not_failed() -> None:
    v = check(history(stalls=((2.0, 5.0),)), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert "observer was starved: it stalled for 3.0 s" in v.reasons[0]


def test_a_failure_outranks_a_stalled_observer_and_lists_it() -> None:
    v = check(history(answered=0.3, stalls=((2.0, 5.0),)), P)
    assert v.outcome is Outcome.FAIL
    assert "of the offered load" in v.reasons[0] and "observer was starved" in v.reasons[-1]


def test_requests_sent_late_by_a_starved_generator_are_excused_from_latency() -> None:
    events = history(latency=0.1)
    late = [e for e in events if e.kind == "op"][:10]
    for e in late:
        e.fields["lag_s"], e.fields["latency_s"] = 0.6, 2.0
    v = check(events, P)
    assert v.outcome is Outcome.PASS, v.reasons
    assert v.figures["excused_requests"] == 10


def test_warmup_requests_are_not_judged() -> None:
    events = history(latency=0.1)
    warm = [ev(1.5, "op", name="request", ok=False, latency_s=5.0, sent_t=1.0, lag_s=0.0,
               status="", error="no answer within 5 s", phase="warmup") for _ in range(30)]
    v = check(sorted(events + warm, key=lambda e: e.t), P)
    assert v.outcome is Outcome.PASS, v.reasons
    assert v.figures["requests"] == 100 and v.figures["timeouts"] == 0


def test_nearest_rank_percentile() -> None:
    assert percentile([5, 1, 3, 2, 4], 50) == 3
    assert percentile(list(range(1, 101)), 99) == 99
    assert percentile([7], 99) == 7


# -- the fault: the quota applied, and container detection changed what a JVM saw ----------

def test_a_quota_that_did_not_apply_is_inconclusive_alone_not_failed() -> None:
    # the pools look constrained, but the cgroup has another quota than the one asked
    v = check(history(answered=0.3, quota=2.0), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert v.reasons == ("the CPU quota did not apply: repro-ab12-service's cgroup reads 2 "
                         "CPUs, 1 asked",)
    assert v.figures["delivered_fraction"] == 0.3  # measured, not judged


def test_no_quota_at_all_is_inconclusive_alone() -> None:
    v = check(history(latency=2.0, quota=None), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    (reason,) = v.reasons
    assert "was not read back from its cgroup (asked 1 CPUs)" in reason


def test_detection_that_saw_all_the_runners_cpus_is_inconclusive_for_either_direction() -> None:
    # a cpuset of one CPU: the quota of 1 CPU is the whole runner; a pass or a failure of the
    # options under test says nothing about the update's effect
    for answered in (1.0, 0.3):
        v = check(history(answered=answered, runner=1, detected=1), P)
        assert v.outcome is Outcome.INCONCLUSIVE
        (reason,) = v.reasons
        assert "container detection changed nothing" in reason
        assert "saw 1 processors, and the container can run on 1 CPUs" in reason


def test_a_quota_above_the_runner_is_inconclusive_too() -> None:
    # 4 CPUs of quota in a container that may run on 2: detection sees the 2, nothing shrinks
    v = check(history(runner=2, detected=2, quota=4.0),
              Params(**{**P.__dict__, "cpus": 4.0}))
    assert v.outcome is Outcome.INCONCLUSIVE
    assert "changed nothing" in v.reasons[0]


def test_detection_not_measured_is_inconclusive() -> None:
    for missing in ({"runner": None}, {"detected": None}):
        v = check(history(**missing), P)  # type: ignore[arg-type]
        assert v.outcome is Outcome.INCONCLUSIVE
        assert "container detection not measured" in v.reasons[0]


def test_the_scenario_stopping_after_the_fault_did_not_take_is_inconclusive_alone() -> None:
    # what scenario.py records then: no downstream, no service, no load
    events = [e for e in history(runner=1, detected=1, n=0)
              if not (e.kind == "host" or e.get("what") in ("jvm", "pools"))]
    v = check(events, P)
    assert v.outcome is Outcome.INCONCLUSIVE
    (reason,) = v.reasons
    assert "changed nothing" in reason


def test_a_starved_observer_beside_a_fault_that_did_not_take_gives_one_reason() -> None:
    v = check(history(stalls=((2.0, 5.0),), quota=0.5), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert len(v.reasons) == 1 and "did not apply" in v.reasons[0]


def test_a_service_that_does_not_start_fails_even_when_the_quota_did_not_apply() -> None:
    # an option the JVM refuses fails whatever the quota: the reason is listed beside it
    v = check(history(failed=True, quota=2.0), P)
    assert v.outcome is Outcome.FAIL
    assert "could not create" in v.reasons[0] and "did not apply" in v.reasons[-1]


def test_detection_off_sees_the_runner_and_passes_when_its_pools_meet_the_load() -> None:
    # -XX:-UseContainerSupport alone: the JVM under test saw the runner's 2 CPUs, the
    # harness's detecting JVM saw 1: the fault took, the options under test avoided it
    v = check(history(processors=2, detected=1, runner=2), P)
    assert v.outcome is Outcome.PASS, v.reasons


def test_prefix_pools_from_the_quota_fail_once_detection_took() -> None:
    v = check(history(answered=0.3, processors=1, detected=1, runner=2), P)
    assert v.outcome is Outcome.FAIL
    assert "available processors 1, workers 16, connections 3" in v.reasons[0]


def test_detection_on_with_pools_sized_by_hand_passes_on_what_it_delivered() -> None:
    # -XX:+UseContainerSupport -Dservice.connections=16: the JVM saw the quota's 1 processor
    # and the service delivered; the oracle judges the delivery, not the processors
    events = history(processors=1)
    for e in events:
        if e.get("what") == "pools":
            e.fields.update(workers=64, connections=16)
    v = check(events, P)
    assert v.outcome is Outcome.PASS, v.reasons
    assert v.figures["available_processors"] == 1 and v.figures["connections"] == 16


# -- the load sized from the runner ---------------------------------------------------------

SIZED = Params(**{**P.__dict__, "rate": 0.0, "load": 0.7, "downstream_ms": 150.0})


def test_sized_rate_sits_between_the_quota_pools_and_the_runner_pools() -> None:
    quota_pools = 3 / 0.15  # 1 CPU detected: 3 connections of 150 ms
    for cpus in (2, 4, 16):
        runner_pools = (2 * cpus + 1) / 0.15
        rate = sized_rate(cpus, 0.7, 150.0)
        assert quota_pools * 1.15 < rate <= 0.7 * runner_pools + 0.05
        assert rate < 0.75 * 32 / 0.15  # fixed.options' 32 connections meet it up to 16 CPUs
    assert sized_rate(2, 0.7, 150.0) == 23.3 and sized_rate(16, 0.7, 150.0) == 154.0


def test_the_sized_load_is_asked_from_the_runners_recorded_cpus() -> None:
    rate = sized_rate(2, 0.7, 150.0)
    v = check(history(n=233, rate=rate, processors=2), SIZED)
    assert v.outcome is Outcome.PASS, v.reasons
    assert v.figures["asked_rps"] == 23.3 and v.figures["offered_rps"] == 23.3


def test_a_load_sized_for_a_smaller_runner_is_not_the_load_asked() -> None:
    # 100 requests at 10/s recorded, but the runner's 4 CPUs ask 42/s: not offered as asked
    v = check(history(n=100, runner=4, processors=4), SIZED)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert "only 100 of the 420 requests asked were offered" in v.reasons[0]
