"""Host logs are stored and linked under the result they belong to, by exact file.

Model (repro.harness.report.hostlogs): providers leave `hosts/<host name>.log` when a
hosts block ends, and host names repeat across incidents, directions and attempts; the
session moves what is there into the folder of the result being recorded (and links it
from results that were running on the same hosts), or, at a test's end, to its results
that got none, else to `hosts/<test>/`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repro.harness import cleanup
from repro.harness.checks import Outcome, Verdict
from repro.harness.report import html
from repro.harness.report.hostlogs import ARTEFACT_PREFIX, HostLogs
from repro.harness.report.record import RunReport, TestRecord
from repro.harness.report.results import IncidentResult

pytest_plugins = ["pytester"]

TARGET = "repro-ab12-target"


def start(run_dir: Path, incident: str, label: str) -> IncidentResult:
    """What an envelope does when it opens: the result's folder and its history."""
    folder = run_dir / incident / label
    folder.mkdir(parents=True)
    (folder / "history.jsonl").write_text("")
    return IncidentResult(incident, label, "cfg", "docker", Verdict(Outcome.PASS, ()),
                          Outcome.PASS, 1.0, {"history": str(folder / "history.jsonl")},
                          TARGET)


def host_ends(run_dir: Path, text: str, name: str = TARGET) -> None:
    """What a provider does when a hosts block ends."""
    (run_dir / "hosts").mkdir(exist_ok=True)
    (run_dir / "hosts" / f"{name}.log").write_text(text)


def logs_of(result: IncidentResult) -> dict[str, str]:
    return {k.removeprefix(ARTEFACT_PREFIX): Path(v).read_text()
            for k, v in result.artefacts.items() if k.startswith(ARTEFACT_PREFIX)}


def test_the_same_host_name_in_two_incidents_keeps_two_logs(tmp_path: Path) -> None:
    logs = HostLogs(tmp_path)
    first = start(tmp_path, "cache_restore", "under test")
    host_ends(tmp_path, "cache_restore's build", "repro-ab12-build")
    logs.on_record(first)
    logs.on_test_end("repro/cache_restore/test_a.py::test_under")
    second = start(tmp_path, "single_branch", "under test")
    host_ends(tmp_path, "single_branch's build", "repro-ab12-build")
    logs.on_record(second)
    assert logs_of(first) == {"repro-ab12-build.log": "cache_restore's build"}
    assert logs_of(second) == {"repro-ab12-build.log": "single_branch's build"}
    assert Path(first.artefacts[ARTEFACT_PREFIX + "repro-ab12-build.log"]).parent == \
        tmp_path / "cache_restore" / "under test" / "hosts"
    assert logs.unclaimed() == []


def test_an_attempt_run_again_keeps_its_own_log(tmp_path: Path) -> None:
    logs = HostLogs(tmp_path)
    attempt1 = start(tmp_path, "mtu_wedge", "under test")
    host_ends(tmp_path, "attempt 1")
    logs.on_record(attempt1)
    attempt2 = start(tmp_path, "mtu_wedge", "under test (attempt 2)")
    host_ends(tmp_path, "attempt 2")
    logs.on_record(attempt2)
    assert logs_of(attempt1) == {f"{TARGET}.log": "attempt 1"}
    assert logs_of(attempt2) == {f"{TARGET}.log": "attempt 2"}


def test_results_of_one_scenario_call_share_its_hosts_logs(tmp_path: Path) -> None:
    """slowclone's side_by_side: both directions on one set of hosts, two tests record."""
    logs = HostLogs(tmp_path)
    under = start(tmp_path, "slowclone", "under test")
    prefix = start(tmp_path, "slowclone", "prefix fixture")
    host_ends(tmp_path, "the shared server", "repro-ab12-server")
    logs.on_record(under)
    logs.on_test_end("repro/slowclone/test_slowclone.py::test_configuration_under_test")
    logs.on_record(prefix)
    assert logs_of(under) == logs_of(prefix) == {"repro-ab12-server.log": "the shared server"}
    later = start(tmp_path, "mtu_wedge", "under test")
    host_ends(tmp_path, "mtu_wedge's target")
    logs.on_record(later)
    assert logs_of(later) == {f"{TARGET}.log": "mtu_wedge's target"}  # not the server's


def test_a_result_without_hosts_links_no_other_tests_log(tmp_path: Path) -> None:
    logs = HostLogs(tmp_path)
    alone = start(tmp_path, "mongo_index_lock", "under test")
    logs.on_record(alone)
    logs.on_test_end("repro/mongo_index_lock/test_m.py::test_under")
    other = start(tmp_path, "mtu_wedge", "under test")
    host_ends(tmp_path, "mtu_wedge's target")
    logs.on_record(other)
    assert logs_of(alone) == {}
    assert logs_of(other) == {f"{TARGET}.log": "mtu_wedge's target"}


def test_a_log_written_after_the_record_goes_to_the_tests_result(tmp_path: Path) -> None:
    logs = HostLogs(tmp_path)
    result = start(tmp_path, "mtu_wedge", "under test")
    logs.on_record(result)
    host_ends(tmp_path, "torn down in the test's tear-down")
    assert logs.on_test_end("repro/mtu_wedge/test_mtu_wedge.py::test_under") == [
        f"mtu_wedge/under test/hosts/{TARGET}.log"]
    assert logs_of(result) == {f"{TARGET}.log": "torn down in the test's tear-down"}


def test_a_crashed_reproductions_logs_go_to_its_test(tmp_path: Path) -> None:
    logs = HostLogs(tmp_path)
    crashed = start(tmp_path, "mtu_wedge", "under test")  # its scenario raised: no result
    host_ends(tmp_path, "what the crash left")
    nodeid = "repro/mtu_wedge/test_mtu_wedge.py::test_configuration_under_test"
    kept = logs.on_test_end(nodeid)
    assert kept == [f"hosts/repro-mtu_wedge-test_mtu_wedge.py-test_configuration_under_test"
                    f"/{TARGET}.log"]
    assert (tmp_path / kept[0]).read_text() == "what the crash left"
    host_ends(tmp_path, "the next test's")
    logs.on_record(crashed)  # the same folder recorded later: the crash's logs not taken
    assert logs_of(crashed) == {f"{TARGET}.log": "the next test's"}


def test_an_artefact_naming_a_claimed_file_names_it_where_it_is(tmp_path: Path) -> None:
    logs = HostLogs(tmp_path)
    guest = start(tmp_path, "kernel_panic", "under test")
    host_ends(tmp_path, "serial console", f"{TARGET}.console")
    guest.artefacts["console"] = str(tmp_path / "hosts" / f"{TARGET}.console.log")
    logs.on_record(guest)
    assert Path(guest.artefacts["console"]).read_text() == "serial console"
    assert Path(guest.artefacts["console"]).parent == tmp_path / "kernel_panic" / "under test" \
        / "hosts"
    assert logs_of(guest) == {}  # named once, as its console


def test_the_page_links_exactly_the_results_own_logs(tmp_path: Path) -> None:
    logs = HostLogs(tmp_path)
    a = start(tmp_path, "cache_restore", "under test")
    host_ends(tmp_path, "a", "repro-ab12-build")
    logs.on_record(a)
    b = start(tmp_path, "single_branch", "under test")
    host_ends(tmp_path, "b", "repro-ab12-build")
    host_ends(tmp_path, "b's client", "repro-ab12-client")
    logs.on_record(b)
    host_ends(tmp_path, "nobody's", "repro-ab12-srv-0")  # left unclaimed in hosts/
    page = html.render(RunReport("r", [a, b], exit_status=0), tmp_path)
    section_a, section_b = page.split('<section class="result"')[1:3]
    assert "cache_restore/under%20test/hosts/repro-ab12-build.log" in section_a
    assert "single_branch" not in section_a and "client" not in section_a
    assert "single_branch/under%20test/hosts/repro-ab12-build.log" in section_b
    assert "single_branch/under%20test/hosts/repro-ab12-client.log" in section_b
    assert "srv-0" not in page


def test_a_test_records_logs_are_on_its_section(tmp_path: Path) -> None:
    (tmp_path / "hosts" / "t").mkdir(parents=True)
    (tmp_path / "hosts" / "t" / f"{TARGET}.log").write_text("x")
    rec = TestRecord("repro/mtu_wedge/test_x.py::test_a", "mtu_wedge", "error", "boom",
                     logs=[f"hosts/t/{TARGET}.log"])
    page = html.render(RunReport("r", [], [rec], exit_status=1), tmp_path)
    assert f'href="hosts/t/{TARGET}.log"' in page


FAKE = '''
from pathlib import Path
from repro.harness.checks import Outcome, Verdict
from repro.harness.report.results import IncidentResult


def scenario(run, label, text):
    folder = run.reports / "mtu_wedge" / label
    folder.mkdir(parents=True)
    (folder / "history.jsonl").write_text("")
    (run.reports / "hosts").mkdir(exist_ok=True)
    (run.reports / "hosts" / (run.name("target") + ".log")).write_text(text)
    return IncidentResult("mtu_wedge", label, "cfg", "docker", Verdict(Outcome.PASS, ()),
                          Outcome.PASS, 1.0, {"history": str(folder / "history.jsonl")},
                          run.name("target"))


def test_configuration_under_test(repro_run, repro_results):
    repro_results.record(scenario(repro_run, "under test", "log of the first"))


def test_configuration_under_test_on_qemu(repro_run, repro_results):
    repro_results.record(scenario(repro_run, "under test on qemu", "log of the second"))
'''


def test_a_session_stores_each_results_log_under_it(pytester: pytest.Pytester,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cleanup, "reap", lambda all_runs: [])
    folder = pytester.path / "repro" / "mtu_wedge"
    folder.mkdir(parents=True)
    (folder / "test_fake.py").write_text(FAKE)
    reports = pytester.path / "reports"
    pytester.runpytest_inprocess("-p", "no:cacheprovider", "--repro-reports", str(reports),
                                 str(folder)).assert_outcomes(passed=2)
    raw = json.loads((reports / "latest" / "results.json").read_text())
    texts = [{k: Path(v).read_text() for k, v in r["artefacts"].items()
              if k.startswith(ARTEFACT_PREFIX)} for r in raw["results"]]
    assert [list(t.values()) for t in texts] == [["log of the first"], ["log of the second"]]
    page = (reports / "latest" / "index.html").read_text()
    assert page.count("-target.log</a>") == 2  # each section links its own, once


ON_DOCKER = '''
import pytest
from repro.harness.checks import Outcome, Verdict
from repro.harness.envelope import envelope
from repro.harness.hosts import open_hosts

pytestmark = [pytest.mark.mtu, pytest.mark.docker]


def scenario(run, label, marker):
    with envelope(run, "mtu_wedge", label, "cfg", "docker") as env, \\
            open_hosts("docker", run, ["target"]) as hosts:
        env.target = hosts["target"].name
        hosts["target"].run(f"echo {marker} > /proc/1/fd/1", timeout=30)
        return env.result(Verdict(Outcome.PASS, ()))


def test_configuration_under_test(repro_run, repro_results):
    repro_results.record(scenario(repro_run, "under test", "marker-of-the-first"))


def test_configuration_under_test_again(repro_run, repro_results):
    repro_results.record(scenario(repro_run, "under test again", "marker-of-the-second"))
'''


NO_REAPING = '''
from repro.harness import cleanup
cleanup.reap = lambda all_runs: []  # a unit test: no other run's leftovers reaped
'''


@pytest.mark.docker
def test_two_docker_hosts_of_one_name_keep_two_logs(pytester: pytest.Pytester) -> None:
    """Real Docker hosts (the provider writes the container's log at teardown): the same
    host name twice, each result's log is its own container's. In a process of its own:
    the Docker SDK does not survive pytester's in-process sessions' module snapshots."""
    folder = pytester.path / "repro" / "mtu_wedge"
    folder.mkdir(parents=True)
    (folder / "test_on_docker.py").write_text(ON_DOCKER)
    (pytester.path / "conftest.py").write_text(NO_REAPING)
    reports = pytester.path / "reports"
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--repro-reports", str(reports),
                                  str(folder), timeout=300).assert_outcomes(passed=2)
    raw = json.loads((reports / "latest" / "results.json").read_text())
    logs = [[Path(v) for k, v in r["artefacts"].items() if k.startswith(ARTEFACT_PREFIX)]
            for r in raw["results"]]
    assert [[p.name for p in mine] for mine in logs] == [[f"{r['target']}.log"]
                                                         for r in raw["results"]]
    first, second = (mine[0].read_text() for mine in logs)
    assert "marker-of-the-first" in first and "marker-of-the-second" not in first
    assert "marker-of-the-second" in second and "marker-of-the-first" not in second
    assert not list((reports / "latest" / "hosts").glob("*.log"))  # nothing left unclaimed
