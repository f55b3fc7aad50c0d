"""Prometheus on the runner (repro.harness.services.prometheus): rule files checked in one
line, a real server on a loopback port evaluating rules and answering queries, stopped and
its directory removed on the way out; a server a dead run left behind reaped by `reap()`,
one of a live run spared. Only loopback is scraped (Prometheus itself)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from repro.harness import procs
from repro.harness.errors import ConfigError
from repro.harness.services import prometheus
from repro.harness.services.prometheus import Job, prometheus_server

RULES = """groups:
  - name: t
    rules:
      - alert: Always
        expr: vector(1)
        labels: {reason: test}
"""


@pytest.fixture(autouse=True)
def _needs_prometheus() -> None:
    if not prometheus.available():
        pytest.fail(f"missing prerequisite: Prometheus ({prometheus.INSTALL})", pytrace=False)


def test_a_sound_rule_file_passes_and_a_broken_one_is_one_line(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yml", tmp_path / "bad.yml"
    good.write_text(RULES)
    bad.write_text('groups: [{name: g, rules: [{alert: A, expr: "up ==="}]}]\n')
    assert prometheus.check_rules(good) == ""
    said = prometheus.check_rules(bad)
    assert said.startswith("promtool check rules: ") and "parse error" in said
    assert "\n" not in said


def test_a_bad_rule_file_is_refused_before_any_host_starts(tmp_path: Path) -> None:
    from repro.harness.config import ConfigFile, build
    from repro.reboot_blindspot.config import RebootBlindspotConfig

    bad = tmp_path / "bad.yml"
    bad.write_text("groups: [{name: g, rules: [{alert: A, expr: 'rate(up)'}]}]\n")
    config = ConfigFile(tmp_path / "c.toml", {})
    with pytest.raises(ConfigError, match=r"reboot_blindspot: rules: .*bad.yml: promtool"):
        build(RebootBlindspotConfig, {"rules": "bad.yml"}, incident="reboot_blindspot",
              config=config)
    good = tmp_path / "good.yml"
    good.write_text(RULES)
    with pytest.raises(ConfigError, match="defines no alert named 'ServerDown'"):
        build(RebootBlindspotConfig, {"rules": "good.yml"}, incident="reboot_blindspot",
              config=config)
    cfg = build(RebootBlindspotConfig, {"rules": "good.yml", "alert": "Always"},
                incident="reboot_blindspot", config=config)
    assert cfg.alert == "Always"


def test_a_server_evaluates_the_rules_and_leaves_nothing(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    scratch = tmp_path / "repro-ab12"
    scratch.mkdir()
    log = tmp_path / "kept.log"
    with prometheus_server(scratch, "t", [Job("self", ("127.0.0.1:1",))], rules,
                           keep_log=log) as prom:
        assert prom.url.startswith("http://127.0.0.1:")
        assert any(str(prom.directory) in " ".join(procs.cmdline(pid))
                   for pid, _ in prometheus._servers(tmp_path))
        view = procs.wait_for(lambda: prom.rules().alerts and prom.rules(), timeout=30,
                              what="the alert")
        alert = view.alerts[0]
        assert (alert.name, alert.state, alert.labels["reason"]) == ("Always", "firing", "test")
        assert alert.active_at is not None and abs(alert.active_at - time.time()) < 60
        assert view.last_evaluation is not None
        assert prom.query("vector(3)")[0][2] == 3.0
        up = procs.wait_for(lambda: prom.query('up{job="self"}'), timeout=30, what="a scrape")
        assert up[0][2] == 0.0  # nothing listens on port 1: a failed scrape, up == 0
    assert not prom.directory.exists()
    assert prometheus._servers(tmp_path) == []
    assert "Server is ready" in log.read_text()


def _orphan(tmp_path: Path, owner_pid: int) -> tuple[subprocess.Popen[bytes], Path]:
    """A Prometheus in a run's scratch dir whose owner is `owner_pid`, as a SIGKILLed run
    leaves it (not inside a context manager: nothing stops it)."""
    scratch = tmp_path / f"repro-{os.urandom(2).hex()}"
    directory = scratch / f"{prometheus.DIR_PREFIX}left"
    (directory / "data").mkdir(parents=True)
    (scratch / "owner.pid").write_text(f"{owner_pid}\n20260101-000000-{scratch.name[-4:]}\n")
    (directory / "rules.yml").write_text(RULES)
    (directory / "prometheus.yml").write_text(prometheus.config_text([], 1.0, 1.0))
    proc = prometheus._start(directory, procs.free_port())
    procs.wait_for(lambda: prometheus._servers(tmp_path), timeout=30, what="the orphan")
    return proc, directory


def test_reap_stops_the_server_of_a_dead_run_and_spares_a_live_one(tmp_path: Path) -> None:
    proc, directory = _orphan(tmp_path, owner_pid=2 ** 22 + 1)
    live_id = f"20260101-000000-{directory.parent.name[-4:]}"
    try:
        assert prometheus.reap(False, {live_id}, root=tmp_path) == []  # its run is alive
        assert proc.poll() is None
        done = prometheus.reap(False, set(), root=tmp_path)
        assert any("stopped" in d for d in done) and any("removed" in d for d in done)
        assert proc.wait(timeout=30) is not None
        assert not directory.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_the_alert_watcher_records_rounds_and_each_state_change(tmp_path: Path) -> None:
    from repro.harness.history import History, of_kind
    from repro.harness.probes.alerts import AlertWatcher, Query

    rules = tmp_path / "rules.yml"
    rules.write_text(RULES + "      - alert: Held\n        expr: vector(2)\n        for: 2s\n")
    scratch = tmp_path / "repro-cd34"
    scratch.mkdir()
    history = History()
    with prometheus_server(scratch, "w", [], rules) as prom, \
            AlertWatcher(history, prom, "h", (Query("three", "vector(3)", panel="p", unit="u",
                                                     title="three (drawn)"),
                                               Query("none", "absent(vector(1))")),
                         interval_s=0.2):
        procs.wait_for(lambda: any(e.get("alert") == "Held" and e.get("state") == "firing"
                                   for e in of_kind(history.events(), "alert")),
                       timeout=30, what="Held firing")
    events = history.events()
    held = [e.get("state") for e in of_kind(events, "alert") if e.get("alert") == "Held"]
    assert held == ["pending", "firing"]
    rounds = [e for e in of_kind(events, "monitor") if e.get("ok")]
    assert rounds and rounds[-1].get("three") == 3.0 and rounds[-1].get("none") is None
    assert rounds[-1].get("last_eval") is not None and rounds[-1].get("last_eval") <= \
        rounds[-1].t + 1.0
    assert {e.get("name") for e in of_kind(events, "series")} == {"three (drawn)"}
    assert "Always firing (test)" in {e.get("name") for e in of_kind(events, "mark")}
    firing = next(e for e in of_kind(events, "alert") if e.get("state") == "firing"
                  and e.get("alert") == "Held")
    assert firing.get("active_since") is not None and firing.get("active_since") < firing.t
