"""Which client settings save a caller from a frozen replica: the findings the fixed
blackhole_replica caller rests on, measured on a real replicated PostgreSQL (about 35 s).

A replica frozen in the run's freezer cgroup (its kernel still completes handshakes and
acknowledges data) and one whose traffic is dropped on loopback; every setting tried on
a pooled connection, an idle one (queried 4 s into the fault) and a new connection
(repro.blackhole_replica.settings).
"""

from __future__ import annotations

import pytest

from repro.blackhole_replica import settings
from repro.harness.run import Run

pytestmark = [pytest.mark.slow]


def test_only_a_client_side_deadline_saves_a_pooled_connection_from_a_frozen_replica(
        run: Run) -> None:
    got = {(o.setting, o.fault, o.call): o for o in settings.measure(run)}
    print("\n" + settings.table(list(got.values())))

    def returned(setting: str, fault: str, call: str) -> float | None:
        return got[(setting, fault, call)].returned_s

    def within(setting: str, fault: str, call: str) -> float:
        """Seconds it took to return (an error in 0.0 s is a return); 9 when it never did."""
        seconds = returned(setting, fault, call)
        return 9.0 if seconds is None else seconds

    # frozen, the kernel acknowledging: nothing the server or TCP does ever fires
    for s in ("none", "statement_timeout", "keepalives", "tcp_user_timeout",
              "connect_timeout", "multi_host"):
        assert returned(s, "freeze", "pooled") is None, s
        assert returned(s, "freeze", "idle") is None, s
    for s in ("none", "statement_timeout", "keepalives", "tcp_user_timeout"):
        assert returned(s, "freeze", "new") is None, s
    # connect_timeout bounds a new connection (at libpq's 2 s minimum); the host list then
    # answers from the next replica, after that same timeout
    assert 1.5 <= within("connect_timeout", "freeze", "new") <= 3.5
    multi = got[("multi_host", "freeze", "new")]
    assert multi.answered and 1.5 <= (multi.returned_s or 0) <= 3.5
    # the caller's own deadline, abandoning the connection, is the one that always returns
    for fault in ("freeze", "drop"):
        for call in ("pooled", "idle", "new"):
            assert within("deadline", fault, call) <= settings.DEADLINE_S + 0.5
    # with the traffic dropped instead, tcp_user_timeout does fire (nothing is acked)
    assert within("tcp_user_timeout", "drop", "pooled") <= 3.0
    assert returned("none", "drop", "pooled") is None
    assert returned("keepalives", "drop", "pooled") is None  # data in flight: no keepalive
    assert within("keepalives", "drop", "idle") <= 1.0  # found dead while idle
