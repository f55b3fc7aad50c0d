"""`repro gate`: the comparison rules on hand-made sides, image references, and a real
gate on Docker images with their host init baked in: a candidate whose init brings
the mtu_wedge symptom back is blocked, an identical image passes."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from repro.harness import cli, gate, images
from repro.harness.checks import Outcome, Verdict
from repro.harness.errors import ConfigError
from repro.harness.images import ImageRef
from repro.harness.report.record import RunReport, TestRecord
from repro.harness.report.results import IncidentResult
from repro.harness.run import Run, start_run
from tests.leftovers import leftovers

ROOT = Path(__file__).resolve().parent.parent
INCIDENTS = ["a", "b", "c", "d", "e", "f", "g", "h"]


def side(name: str, outcomes: dict[str, str], errors: dict[str, str] | None = None
         ) -> gate.Side:
    s = gate.Side(name, ImageRef("docker", name), Path("/nonexistent"))
    for incident, outcome in outcomes.items():
        s.results[incident] = IncidentResult(
            incident, "under test", "fixed.sh", "docker", Verdict(
                Outcome(outcome), () if outcome == "pass" else (f"{incident} broke",),
                {"longest_gap_s": 0.5}),
            Outcome.PASS, 1.0)
    s.errors = errors or {}
    return s


def test_a_regression_is_a_pass_on_the_baseline_that_is_not_a_pass_on_the_candidate() -> None:
    base = side("base", {"a": "pass", "b": "pass", "c": "fail", "d": "fail", "e": "pass",
                         "h": "pass"})
    base.results |= side("base", {"g": "inconclusive"}).results
    cand = side("cand", {"a": "pass", "b": "fail", "c": "pass", "d": "fail",
                         "f": "pass", "g": "fail", "h": "inconclusive"},
                errors={"e": "ProvisionError: sshd never answered"})
    base.errors = {"f": "HostCommandError: container gone"}
    rows = {r.incident: r for r in gate.compare(base, cand, INCIDENTS)}
    assert {n: r.status for n, r in rows.items()} == {
        "a": "ok", "b": "REGRESSION", "c": "fixed", "d": "fails on both", "e": "REGRESSION",
        "f": "ok", "g": "not judged", "h": "not judged"}
    assert [n for n, r in rows.items() if r.blocks] == ["b", "e", "g", "h"]
    assert rows["g"].detail == ("baseline: g broke", "candidate: g broke")
    assert rows["f"].detail == ("baseline: HostCommandError: container gone",)
    assert rows["b"].detail == ("candidate: b broke",)
    assert rows["d"].detail == ("baseline: d broke", "candidate: d broke")
    assert rows["e"].candidate == "no result"
    assert rows["e"].detail == ("candidate: ProvisionError: sshd never answered",)
    assert rows["a"].detail == ()


def test_inconclusive_results_run_again_once(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    attempts: list[list[str]] = []
    outcomes = iter([{"a": "inconclusive", "b": "pass"}, {"a": "pass"}])

    def attempt(s: gate.Side, chosen: list[str], reports: Path, *rest: object
                ) -> tuple[dict[str, IncidentResult], dict[str, str], int, Path]:
        attempts.append(list(chosen))
        return side("x", next(outcomes)).results, {}, 1, reports / "pytest.log"

    monkeypatch.setattr(gate, "_attempt", attempt)
    s = gate.run_side(gate.Side("base", ImageRef("docker", "x"), tmp_path), ["a", "b"],
                      None, None, "ci", 60)  # type: ignore[arg-type]
    assert attempts == [["a", "b"], ["a"]] and s.retried == ["a"]
    assert {n: r.verdict.outcome.value for n, r in s.results.items()} == {"a": "pass",
                                                                          "b": "pass"}


def test_a_failure_with_inconclusive_reasons_is_a_regression_and_never_run_again(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fail outranks inconclusive (Verdict.judge): one observed failure is the incident."""
    attempts: list[list[str]] = []
    failed = Verdict.judge(["repro-ab12-target answered TCP but its ssh sessions froze"],
                           ["the streams moved nothing"], {})
    assert failed.outcome is Outcome.FAIL

    def attempt(s: gate.Side, chosen: list[str], reports: Path, *rest: object
                ) -> tuple[dict[str, IncidentResult], dict[str, str], int, Path]:
        attempts.append(list(chosen))
        results = side("x", {"a": "pass"}).results  # a second attempt would pass
        if len(attempts) == 1:
            results["a"] = dataclasses.replace(results["a"], verdict=failed)
        return results, {}, 1, reports / "pytest.log"

    monkeypatch.setattr(gate, "_attempt", attempt)
    cand = gate.run_side(gate.Side("candidate", ImageRef("docker", "x"), tmp_path), ["a"],
                         None, None, "ci", 60, retries=3)  # type: ignore[arg-type]
    assert attempts == [["a"]] and cand.retried == []
    [row] = gate.compare(side("base", {"a": "pass"}), cand, ["a"])
    assert row.status == "REGRESSION" and row.candidate == "fail"
    assert row.detail == ("candidate: repro-ab12-target answered TCP but its ssh sessions froze",
                          "candidate: the streams moved nothing")


def test_unknown_and_missing_results_run_again_but_a_pass_does_not(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    attempts: list[list[str]] = []
    outcomes = iter([{"a": "unknown", "b": "pass"}, {"a": "pass", "c": "pass"}])

    def attempt(s: gate.Side, chosen: list[str], reports: Path, *rest: object
                ) -> tuple[dict[str, IncidentResult], dict[str, str], int, Path]:
        attempts.append(list(chosen))
        return side("x", next(outcomes)).results, {}, 1, reports / "pytest.log"

    monkeypatch.setattr(gate, "_attempt", attempt)
    s = gate.run_side(gate.Side("base", ImageRef("docker", "x"), tmp_path), ["a", "b", "c"],
                      None, None, "ci", 60)  # type: ignore[arg-type]
    assert attempts == [["a", "b", "c"], ["a", "c"]] and s.retried == ["a", "c"]


def test_each_side_runs_the_configurations_under_test_by_marker_and_provider() -> None:
    argv = gate.pytest_argv(ImageRef("docker", "cand"), ["mtu_wedge", "slowclone"],
                            Path("/r"), None, "ci")
    assert "-k" not in argv
    assert argv[argv.index("-m", 3) + 1] == "mtu or slowclone"  # (after python -m pytest)
    assert argv[argv.index("--repro-direction") + 1] == "under-test"
    assert argv[argv.index("--repro-provider") + 1] == "docker:cand"


def test_only_the_images_own_results_of_a_configuration_under_test_judge_it() -> None:
    def result(incident: str, label: str, provider: str, outcome: str,
               expected: str = "pass", test: str = "", superseded: bool = False
               ) -> IncidentResult:
        return IncidentResult(incident, label, "fixed.sh", provider,
                              Verdict(Outcome(outcome), (f"{label} said {outcome}",)),
                              Outcome(expected), 1.0, superseded=superseded, test=test)

    report = RunReport("r", [
        result("slowclone", "under test", "docker:cand", "pass"),
        result("slowclone", "qemu under test", "qemu", "fail"),           # a local guest
        result("slowclone", "prefix fixture", "docker:cand", "fail", "fail"),
        result("mtu_wedge", "under test", "docker:cand", "inconclusive", superseded=True),
        result("mtu_wedge", "under test (attempt 2)", "docker:cand", "pass", test="t::m"),
        result("single_branch", "under test", "docker:cand", "pass"),
        result("single_branch", "fixed on x", "docker:cand", "inconclusive"),
    ], [TestRecord("t::m", "mtu_wedge", "failed", "AssertionError: no capture")])
    found, ignored = gate.side_results(report, ImageRef("docker", "cand"),
                                       ["slowclone", "mtu_wedge", "single_branch"])
    assert {n: (r.label, r.verdict.outcome.value) for n, r in found.items()} == {
        "slowclone": ("under test", "pass"),
        "mtu_wedge": ("under test (attempt 2)", "unknown"),  # its test failed after a pass
        "single_branch": ("fixed on x", "inconclusive")}     # the worst of the image's own
    assert found["mtu_wedge"].verdict.reasons == (
        "the test failed after a pass verdict: AssertionError: no capture",)
    assert ignored == ["slowclone 'qemu under test' on qemu"]


def test_an_incident_without_a_result_says_why() -> None:
    report = RunReport("r", [], [
        TestRecord("a::test_prefix_fixture_is_flagged", "mtu_wedge", "skipped",
                   "not selected: --repro-direction under-test"),
        TestRecord("a::test_configuration_under_test", "mtu_wedge", "error",
                   "ProvisionError: sshd never answered"),
        TestRecord("b::test_prefix_fixture_is_flagged", "slowclone", "skipped",
                   "not selected: --repro-direction under-test"),
        TestRecord("b::test_on_qemu", "slowclone", "skipped",
                   "--repro-provider docker:x names another backend; this test forces qemu")])
    assert gate._test_failures(report) == {
        "mtu_wedge": "test_configuration_under_test: ProvisionError: sshd never answered",
        "slowclone": "test_on_qemu not run: --repro-provider docker:x names another backend; "
                     "this test forces qemu"}


def test_reports_fail_junit_only_for_regressions(tmp_path: Path) -> None:
    base = side("base", {"a": "pass", "b": "pass", "d": "fail"})
    cand = side("cand", {"a": "pass", "b": "fail", "d": "fail"})
    rows = gate.compare(base, cand, ["a", "b", "d"])
    gate.write_reports(rows, base, cand, tmp_path)
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert suite.get("tests") == "3" and suite.get("failures") == "1"
    failed = [c.get("classname") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["repro.gate.b"]
    md = (tmp_path / "gate.md").read_text()
    assert "BLOCKED" in md and "| b " in md and "b broke" in md
    table = gate.table(rows, base.image, cand.image)
    assert "REGRESSION" in table
    # the figure shown beside a verdict is the incident's first headline figure with a unit
    assert gate._figure("mtu_wedge", {"streams_up": 20, "longest_gap_s": 0.5}) \
        == " (longest_gap_s 0.5 s)"
    assert gate._figure("mongo_index_lock", {"p99_ms": 30}) == " (p99_ms 30 ms)"
    assert gate._figure("no_such_incident", {"longest_gap_s": 0.5}) == ""


def test_image_references() -> None:
    assert images.parse("docker:repro-x:1") == ImageRef("docker", "repro-x:1")
    assert images.parse("ec2:ami-0123456789abcdef0").provider == "ec2:ami-0123456789abcdef0"
    assert images.parse("ami-0123456789abcdef0") == ImageRef("ec2", "ami-0123456789abcdef0")
    assert images.parse("repro-base:latest") == ImageRef("docker", "repro-base:latest")
    assert images.parse("/tmp").backend == "qemu" and images.parse("/tmp").provider == "qemu"
    with pytest.raises(ConfigError):
        images.parse("qemu:")
    with pytest.raises(ConfigError, match="QEMU guest image"):
        images.check(ImageRef("qemu", "/tmp"))
    with pytest.raises(ConfigError, match="AMI"):
        images.check(ImageRef("ec2", "my-image"))


def test_incidents_must_run_on_the_images_backend() -> None:
    assert "mtu_wedge" in gate.select_incidents(ImageRef("docker", "x"), [])
    assert "kernel_panic" not in gate.select_incidents(ImageRef("docker", "x"), [])
    with pytest.raises(ConfigError, match="cannot run on docker"):
        gate.select_incidents(ImageRef("docker", "x"), ["kernel_panic"])
    with pytest.raises(ConfigError, match="unknown incident"):
        gate.select_incidents(ImageRef("docker", "x"), ["nope"])


# ---- a real gate on Docker images ------------------------------------------------------------
@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    """The test's own run: alive while the gate's pytest runs start (so they keep its images)."""
    r = start_run(tmp_path / "reports")
    yield r
    r.close()


@pytest.mark.docker
@pytest.mark.mtu
@pytest.mark.slow
def test_gate_blocks_an_image_whose_init_brings_the_wedge_back_and_passes_an_identical_one(
        run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "fixed.toml"  # the fixed configuration, with a shorter flood
    cfg.write_text(f'[mtu_wedge]\nhost_init = "{ROOT}/fixtures/mtu_wedge/fixed.sh"\n'
                   "duration_s = 4.0\n")
    good = images.bake_docker(run, ROOT / "fixtures/mtu_wedge/fixed.sh", "good")
    twin = images.bake_docker(run, ROOT / "fixtures/mtu_wedge/fixed.sh", "twin")
    bad = images.bake_docker(run, ROOT / "fixtures/mtu_wedge/prefix.sh", "bad")
    reports = tmp_path / "gate-reports"
    try:
        common = ["--incidents", "mtu_wedge", "--config", str(cfg), "--reports", str(reports),
              "--retries", "2"]  # a loaded machine starves the observer: inconclusive
        code = cli.main(["gate", "--baseline", str(good), "--candidate", str(bad), *common,
                         "--junit", str(tmp_path / "gate-junit.xml")])
        out = capsys.readouterr().out
        assert code == cli.EXIT_FAILED, out
        assert "REGRESSION" in out and "BLOCKED: mtu_wedge REGRESSION" in out
        assert "dropped off the network" in out
        suite = ET.parse(tmp_path / "gate-junit.xml").getroot()
        assert suite.get("failures") == "1"
        latest = reports / "latest"
        assert (latest / "gate.md").is_file()
        # each side's own run report is there too, with its page
        assert list((latest / "candidate").glob("*/index.html"))

        code = cli.main(["gate", "--baseline", str(good), "--candidate", str(twin), *common])
        out = capsys.readouterr().out
        assert code == cli.EXIT_OK, out
        assert "| ok" in out and "passed" in out
    finally:
        for image in (good, twin, bad):
            images.remove(image)
    assert leftovers(run.short) == [f"scratch /tmp/{run.name()}"]
    import docker
    assert not docker.from_env().images.list(filters={"label": f"repro.run={run.run_id}"})


@pytest.mark.docker
def test_a_side_past_its_timeout_is_stopped_and_leaves_nothing(run: Run, tmp_path: Path) -> None:
    side = gate.Side("candidate", ImageRef("docker", "repro-base:latest"), tmp_path / "cand")
    gate.run_side(side, ["mtu_wedge"], run, None, "ci", timeout_s=6)
    assert side.exit_code is None
    assert side.errors["mtu_wedge"].startswith("timed out after 6 s")
    # under load the child may be stopped before it made its run: then it has nothing to leave
    children = [d for d in side.reports.iterdir() if d.is_dir() and d.name != "latest"]
    assert len(children) <= 1
    for child in children:
        assert leftovers(child.name.rsplit("-", 1)[-1]) == []
