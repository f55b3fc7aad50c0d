"""The plugin acts only where reproductions run.

Model: repro's pytest plugin is installed in the environment, so it loads in every pytest
session there. A session that collects no reproduction and starts no Run must behave as
if it were not installed: its signal handlers stay as they were, SIGALRM (pytest-timeout's
signal method, a test's own alarm) is never taken. A session that runs a reproduction
routes SIGINT, SIGTERM and SIGHUP through repro.harness.interrupts while it runs and gives
them back at its end.

The first case runs a plain test file twice in subprocesses, with the plugin and with
`-p no:repro`, and compares pytest's outcome of each test (read from --junitxml).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from repro.harness import cleanup, interrupts

pytest_plugins = ["pytester"]

RUN_TIMEOUT_S = 120

PLAIN = '''
import signal, threading
import pytest


def test_own_alarm_is_delivered():
    got = threading.Event()
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: got.set())
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        assert got.wait(10), "SIGALRM never reached the test's handler"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_handlers_are_pythons_own():
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL


@pytest.mark.timeout(1, method="signal")
def test_hangs_and_is_timed_out():
    threading.Event().wait(30)


@pytest.mark.timeout(5, method="signal")
def test_quick_under_a_timeout():
    assert sum(range(10)) == 45
'''


def outcomes(junit: Path) -> dict[str, str]:
    """test name -> passed | failed | error | skipped, from a junit XML file."""
    found = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        kinds = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
        found[case.get("name", "")] = kinds[0] if kinds else "passed"
    return found


def run_plain(tmp_path: Path, *args: str) -> dict[str, str]:
    junit = tmp_path / f"junit{len(args)}.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                    f"--junitxml={junit}", "test_plain.py", *args],
                   cwd=tmp_path, capture_output=True, timeout=RUN_TIMEOUT_S, check=False)
    return outcomes(junit)


def test_a_plain_session_behaves_as_without_repro(tmp_path: Path) -> None:
    pytest.importorskip("pytest_timeout")
    (tmp_path / "test_plain.py").write_text(PLAIN)
    with_repro = run_plain(tmp_path)
    without = run_plain(tmp_path, "-p", "no:repro")
    assert without == {"test_own_alarm_is_delivered": "passed",
                       "test_handlers_are_pythons_own": "passed",
                       "test_hangs_and_is_timed_out": "failure",
                       "test_quick_under_a_timeout": "passed"}, without
    assert with_repro == without
    assert not (tmp_path / "reports").exists()  # no run, no report folder


REPRODUCTION = '''
import signal
from repro.harness import interrupts


def test_configuration_under_test():
    assert signal.getsignal(signal.SIGINT) is interrupts._on_signal
    assert signal.getsignal(signal.SIGTERM) is interrupts._on_signal
    assert signal.getsignal(signal.SIGALRM) is not interrupts._on_signal
'''


def test_a_reproduction_has_the_handlers_while_it_runs(pytester: pytest.Pytester,
                                                       monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    monkeypatch.setattr(cleanup, "reap", lambda all_runs: [])
    folder = pytester.path / "repro" / "mtu_wedge"
    folder.mkdir(parents=True)
    (folder / "test_fake.py").write_text(REPRODUCTION)
    before = {s: signal.getsignal(s) for s in (*interrupts.SIGNALS, signal.SIGALRM)}
    got = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--repro-reports",
                                       str(pytester.path / "reports"), str(folder))
    got.assert_outcomes(passed=1)
    assert {s: signal.getsignal(s) for s in before} == before  # given back at the end
    assert not interrupts.installed()


def scheduling(tmp_path: Path, *args: str) -> list[str]:
    """pytest-xdist's "scheduling tests via ..." line of a plain session with -n 2."""
    got = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v",
                          "-n", "2", "test_two.py", *args], cwd=tmp_path, capture_output=True,
                         text=True, timeout=RUN_TIMEOUT_S, check=False)
    return [line for line in got.stdout.splitlines() if "scheduling tests via" in line]


def test_a_plain_session_keeps_xdists_distribution(tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    (tmp_path / "test_two.py").write_text("def test_a():\n    pass\n\n\n"
                                          "def test_b():\n    pass\n")
    without = scheduling(tmp_path, "-p", "no:repro")
    assert without == ["scheduling tests via LoadScheduling"], without
    assert scheduling(tmp_path) == without


def test_a_session_inside_another_leaves_the_outer_ones_handlers(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cleanup, "reap", lambda all_runs: [])
    folder = pytester.path / "repro" / "mtu_wedge"
    folder.mkdir(parents=True)
    (folder / "test_fake.py").write_text(REPRODUCTION)
    assert interrupts.install()  # as an outer session that started a Run
    try:
        got = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--repro-reports",
                                           str(pytester.path / "reports"), str(folder))
        got.assert_outcomes(passed=1)
        assert interrupts.installed()
        assert signal.getsignal(signal.SIGINT) is interrupts._on_signal
    finally:
        interrupts.uninstall()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
