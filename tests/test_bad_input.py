"""Every class of malformed input, through the real entry points, as a user meets it.

Each case runs `pytest --collect-only -q --repro-config F repro/` and `repro run
--config F` (or another `repro` verb) as a subprocess and asserts: pytest's usage
error (exit 4) or the CLI's bad input (exit 2), exactly one line on stderr naming
the file and the key, nothing on stdout, no traceback, and no run started (its
reports folder was never made). Nothing here needs Docker: every error must come
before any host starts, and the subprocesses see no Docker daemon and no QEMU guest
image (GUARD), so an input that wrongly got through fails fast instead of starting
hosts. `repro cleanup` is only ever parsed here, never run: a bad argument that got
through could remove what other runs on this machine are using.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the venv's console scripts: pytest, repro
AMI = "ami-0123456789abcdef0"
EC2_VARS = ("REPRO_EC2_", "AWS_")  # the caller's AWS settings and credentials stay out
GUARD = {"DOCKER_HOST": "unix:///nonexistent/repro-test-docker.sock",
         "REPRO_CACHE": "/nonexistent/repro-test-cache",
         "AWS_ENDPOINT_URL_EC2": "http://127.0.0.1:9", "AWS_EC2_METADATA_DISABLED": "true"}


def call(argv: list[str], env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(EC2_VARS)}
    return subprocess.run(argv, cwd=ROOT, env={**base, **GUARD, **(env or {})},
                          capture_output=True, text=True, timeout=120, check=False)


def one_line(proc: subprocess.CompletedProcess[str], code: int) -> str:
    """The only stderr line of a refused input (asserting the exit code and no traceback)."""
    said = proc.stdout + proc.stderr
    assert "Traceback" not in said and "INTERNALERROR" not in said, said
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == code and len(lines) == 1 and not proc.stdout.strip(), said
    return lines[0]


def pytest_config(path: Path, reports: Path, *extra: str) -> str:
    proc = call([str(BIN / "pytest"), "--collect-only", "-q", "-p", "no:cacheprovider",
                 "--repro-config", str(path), "--repro-reports", str(reports), *extra,
                 str(ROOT / "repro")])
    line = one_line(proc, 4)
    assert line.startswith("ERROR: ") and not reports.exists(), line
    return line


def repro(*args: str, env: dict[str, str] | None = None, reports: Path | None = None) -> str:
    proc = call([str(BIN / "repro"), *args], env)
    line = one_line(proc, 2)
    assert line.startswith("repro: "), line
    assert reports is None or not reports.exists(), f"a run started: {reports}"
    return line


# (case id, the file's bytes, the key the line must name, what it must say); "DIR" stands
# for the folder the file is in
CONFIG_CASES = [
    ("bad-toml", b"[mtu_wedge\n", "", "not valid TOML"),
    ("bad-toml-value", b"[mtu_wedge]\nstreams = \n", "", "not valid TOML"),
    ("not-utf8", b"[mtu_wedge]\nstreams = 3  # caf\xe9\n", "", "not UTF-8 text"),
    ("top-level-key", b"streams = 3\n", "streams", "must be incident tables"),
    ("unknown-table", b"[mtu_wedgee]\nstreams = 3\n", "mtu_wedgee", "unknown incident table"),
    ("unknown-key", b"[mtu_wedge]\nstreamz = 3\n", "mtu_wedge.streamz", "unknown key"),
    ("unknown-subtable", b"[mtu_wedge.extra]\nx = 1\n", "mtu_wedge.extra", "unknown key"),
    ("wrong-type-int", b'[mtu_wedge]\nstreams = "twenty"\n', "mtu_wedge.streams",
     "expected an integer, got 'twenty'"),
    ("wrong-type-bool", b"[mtu_wedge]\nmax_gap_s = true\n", "mtu_wedge.max_gap_s",
     "expected a number"),
    ("wrong-type-str", b"[slowclone]\ntransport = 3\n", "slowclone.transport",
     "expected a string"),
    ("wrong-type-path", b"[mtu_wedge]\nhost_init = 3\n", "mtu_wedge.host_init",
     "expected a path"),
    ("infinite", b"[mtu_wedge]\nduration_s = inf\n", "mtu_wedge.duration_s",
     "expected a finite number"),
    ("not-a-number", b"[slowclone]\nloss = nan\n", "slowclone.loss", "expected a finite number"),
    ("out-of-range", b"[mtu_wedge]\nstreams = 0\n", "mtu_wedge", "streams must be at least 1"),
    ("out-of-range-fraction", b"[slowclone]\nloss = 1.5\n", "slowclone", "loss must be between"),
    ("bad-choice", b'[mongo_index_lock]\ndb = "oracle"\n', "mongo_index_lock", "oracle"),
    ("missing-path", b'[mtu_wedge]\nhost_init = "nope.sh"\n', "mtu_wedge.host_init",
     "file not found"),
    ("path-is-a-folder", b'[mtu_wedge]\nhost_init = "."\n', "mtu_wedge.host_init",
     "not a regular file: DIR"),
    ("empty-path", b'[single_branch]\ncheckout = ""\n', "single_branch.checkout",
     "expected a path"),
    ("path-unreadable", b'[mtu_wedge]\nhost_init = "/proc/self/mem"\n', "mtu_wedge.host_init",
     "cannot read"),
    ("path-with-nul", b'[mtu_wedge]\nhost_init = "a\\u0000b"\n', "mtu_wedge.host_init",
     "embedded null byte"),
    ("unknown-provider", b'[mtu_wedge]\nprovider = "vmware"\n', "mtu_wedge.provider",
     "unknown provider 'vmware'; known: docker, ec2, qemu"),
    ("provider-takes-no-image", b'[slowclone]\nprovider = "qemu:img"\n', "slowclone.provider",
     "provider 'qemu' takes no image"),
    ("provider-empty-image", b'[single_branch]\nprovider = "docker:"\n',
     "single_branch.provider", "not an image for docker"),
    ("provider-bad-ami", b'[mtu_wedge]\nprovider = "ec2:my-image"\n', "mtu_wedge.provider",
     "not an image for ec2"),
    ("provider-wrong-for-incident", b'[kernel_panic]\nprovider = "docker"\n', "kernel_panic",
     'provider must be "qemu"'),
]


def expected(tmp_path: Path, path: Path, key: str, says: str) -> tuple[str, str]:
    where = f"{path}:{key}: " if key else f"{path}: "
    return where, says.replace("DIR", str(tmp_path))


@pytest.mark.parametrize("entry", ["pytest", "repro run"])
@pytest.mark.parametrize(("text", "key", "says"), [c[1:] for c in CONFIG_CASES],
                         ids=[c[0] for c in CONFIG_CASES])
def test_a_malformed_configuration_is_one_line_naming_file_and_key(
        tmp_path: Path, entry: str, text: bytes, key: str, says: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(text)
    reports = tmp_path / "reports"
    if entry == "pytest":
        line = pytest_config(path, reports)
    else:
        line = repro("run", "--config", str(path), "--reports", str(reports), reports=reports)
    where, says = expected(tmp_path, path, key, says)
    assert where in line and says in line, line


@pytest.mark.parametrize("entry", ["pytest", "repro run"])
@pytest.mark.parametrize(("name", "says"), [
    ("absent.toml", "configuration file not found"),
    ("a-folder.toml", "not a regular file"),
    ("/proc/self/mem", "cannot read: input/output error"),
], ids=["missing", "a-folder", "unreadable"])
def test_a_configuration_file_that_cannot_be_read_is_one_line(
        tmp_path: Path, entry: str, name: str, says: str) -> None:
    (tmp_path / "a-folder.toml").mkdir()
    path = tmp_path / name
    reports = tmp_path / "reports"
    if entry == "pytest":
        line = pytest_config(path, reports)
    else:
        line = repro("run", "--config", str(path), "--reports", str(reports), reports=reports)
    assert f"{path}: {says}" in line, line


def test_a_byte_order_mark_is_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf[mtu_wedge]\nstreams = 2\n")
    proc = call([str(BIN / "pytest"), "--collect-only", "-q", "-p", "no:cacheprovider",
                 "--repro-config", str(path), str(ROOT / "repro" / "mtu_wedge")])
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(("provider", "says"), [
    ("vmware", "unknown provider 'vmware'; known: docker, ec2, qemu"),
    ("qemu:img", "provider 'qemu' takes no image"),
    ("docker:", "not an image for docker"),
    ("ec2:my-image", "not an image for ec2"),
])
def test_a_malformed_provider_option_is_one_line(tmp_path: Path, provider: str,
                                                 says: str) -> None:
    reports = tmp_path / "reports"
    proc = call([str(BIN / "pytest"), "--collect-only", "-q", "-p", "no:cacheprovider",
                 "--repro-provider", provider, "--repro-reports", str(reports),
                 str(ROOT / "repro")])
    assert says in one_line(proc, 4) and not reports.exists()
    line = repro("run", "--provider", provider, "--reports", str(reports), reports=reports)
    assert f"--provider: {says}" in line, line


@pytest.mark.parametrize(("env", "says"), [
    ({"REPRO_EC2_MAX_INSTANCES": "many"}, "REPRO_EC2_MAX_INSTANCES: expected an integer"),
    ({"REPRO_EC2_MAX_INSTANCES": "0"}, "REPRO_EC2_MAX_INSTANCES: must be at least 1"),
    ({"REPRO_EC2_TTL_MIN": "-5"}, "REPRO_EC2_TTL_MIN: must be a positive number"),
    ({"REPRO_EC2_LOGIN_TIMEOUT_S": "inf"}, "REPRO_EC2_LOGIN_TIMEOUT_S: must be a positive"),
    ({"REPRO_EC2_ADDRESS": "both"}, "REPRO_EC2_ADDRESS: must be private or public"),
    ({"REPRO_EC2_AMI": "my-image"}, "REPRO_EC2_AMI: must be an AMI id"),
], ids=["not-an-integer", "zero-cap", "negative-ttl", "infinite-timeout", "bad-address",
        "bad-ami"])
def test_a_malformed_ec2_setting_is_one_line_naming_the_variable(
        tmp_path: Path, env: dict[str, str], says: str) -> None:
    env = {"REPRO_EC2_REGION": "eu-west-1", **env}
    reports = tmp_path / "reports"
    proc = call([str(BIN / "pytest"), "--collect-only", "-q", "-p", "no:cacheprovider",
                 "--repro-provider", "ec2", "--repro-reports", str(reports),
                 str(ROOT / "repro")], env)
    assert says in one_line(proc, 4) and not reports.exists()
    assert says in repro("run", "--provider", "ec2", "--reports", str(reports), env=env,
                         reports=reports)
    path = tmp_path / "ec2.toml"  # the provider named in the configuration instead
    path.write_text('[mtu_wedge]\nprovider = "ec2"\n')
    proc = call([str(BIN / "pytest"), "--collect-only", "-q", "-p", "no:cacheprovider",
                 "--repro-config", str(path), "--repro-reports", str(reports),
                 str(ROOT / "repro")], env)
    assert f"{path}:mtu_wedge.provider: {says}" in one_line(proc, 4)
    line = repro("run", "--config", str(path), "--reports", str(reports), env=env,
                 reports=reports)
    assert f"{path}:mtu_wedge.provider: {says}" in line


def _report_dir(tmp_path: Path, summary: bytes, results: bytes) -> Path:
    run_dir = tmp_path / "20260101-000000-ab12"
    run_dir.mkdir()
    (run_dir / "summary.md").write_bytes(summary)
    (run_dir / "results.json").write_bytes(results)
    return run_dir


# (verb and arguments, what the line says); "TMP" stands for the test's folder
CLI_CASES = [
    (("list", "extra"), "unrecognized arguments: extra"),
    (("doctor", "--fix"), "unrecognized arguments: --fix"),
    (("run", "no_such_incident"), "unknown incident no_such_incident"),
    (("run", "--profile", "huge"), "invalid choice: 'huge'"),
    (("run", "--profile"), "expected one argument"),
    (("run", "--reports", "TMP/file"), "argument --reports: TMP/file is not a folder"),
    (("run", "--reports", "TMP/file/sub"), "argument --reports: TMP/file is not a folder"),
    (("run", "kernel_panic", "--provider", "docker"), "kernel_panic cannot run on docker"),
    (("run", "mtu_wedge", "--provider", "ec2"), "EC2 is not configured (REPRO_EC2_REGION"),
    (("report", "no-such-run", "--reports", "TMP"), "no report at TMP/no-such-run"),
    (("report", "--reports", "TMP/file"), "argument --reports: TMP/file is not a folder"),
    (("report", "TMP/not-utf8"), "TMP/not-utf8/summary.md: not UTF-8 text"),
    (("report", "TMP/bad-json", "--html"), "TMP/bad-json/results.json: not a run's results"),
    (("report", "TMP/no-json", "--html"), "TMP/no-json:results.json: file not found"),
    (("gate", "--baseline", "docker:x"), "required: --candidate"),
    (("gate", "--baseline", "a", "--candidate", "b", "--timeout-min", "-1"),
     "argument --timeout-min: expected a positive number of minutes, got '-1'"),
    (("gate", "--baseline", "a", "--candidate", "b", "--timeout-min", "nan"),
     "argument --timeout-min: expected a positive number"),
    (("gate", "--baseline", "a", "--candidate", "b", "--retries", "9"),
     "argument --retries: invalid choice: 9"),
    (("gate", "--baseline", "a", "--candidate", "b", "--junit", "TMP"),
     "argument --junit: TMP is a folder, not a file"),
    (("gate", "--baseline", "a", "--candidate", "b", "--junit", "TMP/none/j.xml"),
     "argument --junit: folder TMP/none does not exist"),
    (("gate", "--baseline", "a", "--candidate", "b", "--incidents", "nope"),
     "unknown incident nope"),
    (("gate", "--baseline", "a", "--candidate", "b", "--config", "TMP/bad.toml"),
     "TMP/bad.toml:mtu_wedge.provider: unknown provider 'vmware'"),
    (("gate", "--baseline", "ec2:my-ami", "--candidate", f"ec2:{AMI}"), "not an AMI id"),
    (("gate", "--baseline", "docker:a", "--candidate", "qemu:/tmp"),
     "must be the same kind of image"),
]


@pytest.mark.parametrize(("args", "says"), CLI_CASES,
                         ids=["-".join(a[:2]).replace("/", "") for a, _ in CLI_CASES])
def test_bad_arguments_of_every_verb_are_one_line_and_exit_2(
        tmp_path: Path, args: tuple[str, ...], says: str) -> None:
    (tmp_path / "file").write_text("not a folder\n")
    (tmp_path / "bad.toml").write_text('[mtu_wedge]\nprovider = "vmware"\n')
    _report_dir(tmp_path, b"# run\n", b"{}").rename(tmp_path / "bad-json")
    _report_dir(tmp_path, b"# caf\xe9\n", b"{}").rename(tmp_path / "not-utf8")
    _report_dir(tmp_path, b"# run\n", b"{}").rename(tmp_path / "no-json")
    (tmp_path / "no-json" / "results.json").unlink()
    argv = [a.replace("TMP", str(tmp_path)) for a in args]
    line = repro(*argv)
    assert says.replace("TMP", str(tmp_path)) in line, line


@pytest.mark.parametrize(("args", "says"), [
    (("cleanup", "now"), "unrecognized arguments: now"),
    (("cleanup", "--al"), "unrecognized arguments: --al"),  # never a prefix of --all
    (("cleanup", "--all", "--all=yes"), "ignored explicit argument 'yes'"),
    (("run", "--conf", "x.toml"), "unrecognized arguments: --conf"),
    (("report", "--htm"), "unrecognized arguments: --htm"),
    (("gate", "--baseline", "a", "--cand", "b"), "required: --candidate"),
], ids=lambda v: "-".join(v) if isinstance(v, tuple) else None)
def test_bad_arguments_are_refused_before_anything_runs_and_no_option_is_guessed(
        args: tuple[str, ...], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Parsed in this process (never run: see the module's docstring)."""
    from repro.harness import cli
    with pytest.raises(SystemExit) as stop:
        cli._parser().parse_args(list(args))
    lines = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(lines) == 1 and says in lines[0], lines


def test_a_good_report_still_prints(tmp_path: Path) -> None:
    """The checks above refuse bad report folders, not good ones."""
    run_dir = _report_dir(tmp_path, b"# repro run 20260101-000000-ab12\n",
                          json.dumps({"run_id": "20260101-000000-ab12",
                                      "results": []}).encode())
    proc = call([str(BIN / "repro"), "report", str(run_dir)])
    assert proc.returncode == 0 and "# repro run 20260101-000000-ab12" in proc.stdout, proc
