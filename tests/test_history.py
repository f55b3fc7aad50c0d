"""History: time order, JSON lines round trip, concurrent appends."""

from __future__ import annotations

import threading

from repro.harness.history import History, load, of_kind


def test_jsonl_round_trip_and_order(tmp_path):
    path = tmp_path / "h.jsonl"
    h = History(path)
    h.append("probe", "a", t=2.0, ok=True, boot_id="x")
    h.append("fault.start", "a", t=1.0, fault="mtu", params={"mtu": 1400})
    h.close()
    events = load(path)
    assert [e.kind for e in events] == ["fault.start", "probe"]
    assert events[0].get("params") == {"mtu": 1400} and events[1].host == "a"


def test_concurrent_appends_lose_nothing(tmp_path):
    h = History(tmp_path / "h.jsonl")

    def writer(n: int) -> None:
        for i in range(200):
            h.append("op", f"w{n}", i=i)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    h.close()
    assert len(of_kind(load(tmp_path / "h.jsonl"), "op")) == 1600
