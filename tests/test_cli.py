"""The `repro` command: bad input is one line and exit 2; list, doctor and report tell
the truth about this machine and a run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from repro.harness import cli, doctor, incidents
from repro.harness.checks import Outcome, Verdict
from repro.harness.report.results import IncidentResult, write_json

ROOT = Path(__file__).resolve().parent.parent


def repro(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The console script's code path, in a fresh interpreter (no EC2 settings of the caller)."""
    env = env or {k: v for k, v in os.environ.items()
                  if not k.startswith(("REPRO_EC2_", "AWS_REGION", "AWS_DEFAULT_REGION"))}
    return subprocess.run([sys.executable, "-m", "repro.harness.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(("args", "says"), [
    ((), "the following arguments are required: command"),
    (("frobnicate",), "invalid choice: 'frobnicate'"),
    (("run", "no_such_incident"), "unknown incident no_such_incident; known: "),
    (("run", "mtu"), "unknown incident mtu (mtu is the marker of mtu_wedge: repro run mtu_wedge)"),
    (("cleanup", "--", "-q"), "unrecognized arguments: -- -q"),  # only run passes them on
    (("merge", "/nonexistent"), "/nonexistent does not exist"),
    (("run", "--config", "/nonexistent/my.toml"), "configuration file not found"),
    (("run", "--profile", "huge"), "invalid choice: 'huge'"),
    (("report", "no-such-run"), "no report at"),
    (("run", "kernel_panic", "--provider", "docker"), "kernel_panic cannot run on docker hosts"),
    (("run", "--provider", "nosuch"), "unknown provider 'nosuch'"),
    (("run", "mtu_wedge", "--provider", "ec2"), "EC2 is not configured (REPRO_EC2_REGION"),
    (("gate", "--baseline", "docker:x"), "required: --candidate"),
    (("gate", "--baseline", "docker:a", "--candidate", "qemu:/tmp"),
     "must be the same kind of image"),
    (("gate", "--baseline", "ec2:my-ami", "--candidate", "ec2:ami-0123456789abcdef0"),
     "not an AMI id"),
    (("gate", "--baseline", "a", "--candidate", "b", "--incidents", "nope"),
     "unknown incident nope"),
])
def test_bad_input_is_one_line_and_exit_2(args: tuple[str, ...], says: str) -> None:
    res = repro(*args)
    assert res.returncode == 2, res
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and lines[0].startswith("repro: "), res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.docker
def test_gate_refuses_images_that_do_not_exist_and_incidents_the_backend_cannot_run() -> None:
    res = repro("gate", "--baseline", "docker:repro-no-such-image", "--candidate",
                "repro-base:latest")
    assert res.returncode == 2 and "no local Docker image 'repro-no-such-image'" in res.stderr
    res = repro("gate", "--baseline", "repro-base:latest", "--candidate", "repro-base:latest",
                "--incidents", "kernel_panic")
    assert res.returncode == 2 and "kernel_panic cannot run on docker images" in res.stderr


def test_list_names_every_incident_its_marker_and_backends() -> None:
    res = repro("list")
    assert res.returncode == 0, res.stderr
    for inc in incidents.INCIDENTS.values():
        assert inc.name in res.stdout and inc.marker in res.stdout
    assert "backends here" in res.stdout and "not here (why)" in res.stdout


def test_doctor_checks_every_prerequisite_and_says_how_to_fix_what_is_missing(
        tmp_path: Path) -> None:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path)}  # no AWS anywhere
    res = repro("doctor", env=env)
    for name in ("Docker daemon", "base host image", "nftables", "QEMU", "QEMU guest image",
                 "KVM", "netem in the guest kernel", "PostgreSQL", "mongod", "AWS credentials",
                 "EC2 settings"):
        assert name in res.stdout, name
    assert "REPRO_EC2_REGION" in res.stdout  # the fix for the missing EC2 settings
    required_ok = all(c.ok for c in doctor.run_checks([doctor.check_docker,
                                                       doctor.check_nftables]))
    assert res.returncode == (0 if required_ok else 2), res.stdout + res.stderr


def test_backends_need_every_check_of_theirs_and_a_crashing_check_is_not_ok() -> None:
    checks = [doctor.Check("Docker daemon", True, "", required=True, backend="docker"),
              doctor.Check("base host image", False, "missing", "setup", True, "docker"),
              doctor.Check("nftables", True, "", required=True),
              doctor.Check("QEMU", True, "", backend="qemu")]
    b = doctor.backends(checks)
    assert not b["docker"].available and "base host image: missing" in b["docker"].why_not
    assert b["qemu"].available
    assert not b["ec2"].available and b["ec2"].why_not == "not checked"

    def boom() -> doctor.Check:
        raise RuntimeError("no")
    [crashed] = doctor.run_checks([boom])
    assert not crashed.ok and "check crashed: RuntimeError: no" in crashed.detail


def test_report_prints_the_summary_and_writes_the_page(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    run_dir = tmp_path / "20260101-000000-ab12"
    run_dir.mkdir()
    (run_dir / "summary.md").write_text("# repro run 20260101-000000-ab12\n")
    result = IncidentResult("mtu_wedge", "under test", "fixed.sh", "docker",
                            Verdict(Outcome.PASS), Outcome.PASS, 1.0)
    write_json([result], run_dir / "results.json", run_dir.name)
    (tmp_path / "latest").symlink_to(run_dir.name)
    assert cli.main(["report", "--reports", str(tmp_path)]) == 0
    assert "# repro run 20260101-000000-ab12" in capsys.readouterr().out
    assert cli.main(["report", str(run_dir), "--html"]) == 0
    page = run_dir / "index.html"
    assert capsys.readouterr().out.strip() == str(page)
    assert "All 1 results as expected" in page.read_text()
    assert json.loads((run_dir / "results.json").read_text())["run_id"] == run_dir.name


def test_version_names_the_distribution_and_the_checkout_commit() -> None:
    import repro as package
    res = repro("--version")
    assert res.returncode == 0, res
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, text=True,
                            capture_output=True, timeout=30, check=True).stdout.strip()
    assert res.stdout.startswith(f"repro {package.__version__} (pytest-repro, commit {commit}")


@pytest.mark.parametrize("command", ["run", "merge", "report", "gate", "cleanup", "doctor",
                                     "list", "new"])
def test_every_help_lists_the_exit_codes_and_every_option_has_help(command: str) -> None:
    res = repro(command, "--help")
    assert res.returncode == 0, res
    text = " ".join(res.stdout.split())
    assert "Exit codes: 0" in text and "2 bad input or a missing prerequisite" in text, text
    options = [line.split()[0] for line in res.stdout.splitlines()
               if line.startswith("  --") and len(line.split()) == 1]
    assert not options, f"options with no help: {options}"  # a help text starts on its line


def test_batch_alone_prints_its_own_usage() -> None:
    res = repro("batch")
    assert res.returncode == 2
    assert res.stderr.startswith("usage: repro batch") and "batch_command" not in res.stderr


def test_run_passes_the_arguments_after_dashes_to_pytest(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(pytest, "main", lambda argv: seen.append(argv) or 0)
    assert cli.main(["run", "single_branch", "--", "-q", "-x"]) == 0
    (argv,) = seen
    assert argv[-2:] == ["-q", "-x"] and "single_branch" in " ".join(argv)


def test_an_empty_shard_exits_0_and_says_so(tmp_path: Path) -> None:
    # one incident never splits: its pair is shard 1's, and shard 2 of 2 has nothing
    res = repro("run", "single_branch", "--shard", "2/2", "--run-id", "emptyshard",
                "--reports", str(tmp_path))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "shard 2/2 was empty" in res.stdout
    folder = tmp_path / "emptyshard.shard-2-of-2"  # written, so a merge does not call it missing
    assert (folder / "shard.json").is_file()
    session = json.loads((folder / "results.json").read_text())["session"]
    assert session["exit_status"] == 0 and session["finished"], session


def test_a_missing_extra_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from repro.harness.errors import PrerequisiteError
    from repro.harness.extras import have, need
    monkeypatch.setitem(sys.modules, "boto3", None)  # as if the ec2 extra were not installed
    with pytest.raises(PrerequisiteError, match=r"boto3 is not installed \(the 'ec2' extra\)"
                       r".*pip install 'pytest-repro\[ec2\]'"):
        need("boto3")
    assert not have("boto3") and have("tabulate")
