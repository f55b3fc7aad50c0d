"""`repro new NAME`: the skeleton touches only its folder and its fixtures (and the README's
table row), satisfies the consistency test, and its checker's unit tests pass; bad names,
existing ones and marker clashes are one line, before anything is written.

The in-tree case runs in a temporary copy of the checkout (repro/, README.md, the
consistency test) with PYTHONPATH pointing at it, so this checkout is never written. No
hosts are started: tests/test_wheel.py runs a scaffolded incident both ways on Docker.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from repro.harness import cli

ROOT = Path(__file__).resolve().parent.parent
NAME = "svc_restart"
TIMEOUT_S = 300


def checkout_copy(dest: Path) -> Path:
    """The parts of the checkout `repro new` and the consistency test read."""
    shutil.copytree(ROOT / "repro", dest / "repro",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (dest / "fixtures").symlink_to("repro/fixtures")
    shutil.copy(ROOT / "README.md", dest / "README.md")
    (dest / "tests").mkdir()
    for name in ("__init__.py", "test_incident_specs.py"):
        shutil.copy(ROOT / "tests" / name, dest / "tests" / name)
    return dest


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()
            and "__pycache__" not in p.parts}


def python(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["PYTHONPATH"] = str(cwd)  # the copy's repro before the checkout's (editable) one
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT_S, check=False)


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str],
                                                                  dict[str, str], str]:
    copy = checkout_copy(tmp_path_factory.mktemp("checkout"))
    before = digests(copy)
    got = python(copy, "-m", "repro.harness.cli", "new", NAME)
    assert got.returncode == 0, got.stderr
    return copy, before, digests(copy), got.stdout


def test_new_touches_only_its_folder_its_fixtures_and_the_readme_row(
        scaffolded: tuple[Path, dict[str, str], dict[str, str], str]) -> None:
    copy, before, after, _ = scaffolded
    changed = {p for p in after if before.get(p) != after[p]} | (before.keys() - after.keys())
    assert changed - {p for p in changed if p.startswith((f"repro/{NAME}/",
                                                          f"repro/fixtures/{NAME}/"))} == {
        "repro/fixtures/default.toml", "repro/fixtures/prefix.toml", "README.md"}
    for path in ("__init__.py", "config.py", "scenario.py", "check.py", "README.md",
                 f"test_{NAME}.py", f"tests/test_{NAME}_check.py"):
        assert (copy / "repro" / NAME / path).is_file(), path
    for script in ("fixed.sh", "prefix.sh"):
        assert os.access(copy / "repro" / "fixtures" / NAME / script, os.X_OK)
    readme = (copy / "README.md").read_text()
    assert f"| [{NAME}](repro/{NAME}/README.md) | `{NAME}` |" in readme
    assert readme.replace(cli_row(), "") == (ROOT / "README.md").read_text()  # one row added


def cli_row() -> str:
    from repro.harness import scaffold
    return scaffold.readme_row(NAME, NAME) + "\n"


def test_the_consistency_test_passes_with_no_other_edit(
        scaffolded: tuple[Path, dict[str, str], dict[str, str], str]) -> None:
    copy = scaffolded[0]
    got = python(copy, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                 "tests/test_incident_specs.py", "-k", NAME)
    assert got.returncode == 0, got.stdout[-3000:]
    assert "3 passed" in got.stdout  # its spec, its tables and fixtures, its README row


def test_the_skeletons_checker_tests_pass_and_it_is_lint_clean(
        scaffolded: tuple[Path, dict[str, str], dict[str, str], str]) -> None:
    copy = scaffolded[0]
    got = python(copy, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                 f"repro/{NAME}/tests")
    assert got.returncode == 0 and "7 passed" in got.stdout, got.stdout[-3000:]
    ruff = ROOT / ".venv" / "bin" / "ruff"
    if ruff.exists():
        lint = subprocess.run([str(ruff), "check", "--config", str(ROOT / "pyproject.toml"),
                               str(copy / "repro" / NAME)], capture_output=True, text=True,
                              timeout=TIMEOUT_S, check=False)
        assert lint.returncode == 0, lint.stdout


def test_the_skeleton_is_registered_with_its_table_and_prefix_fixture(
        scaffolded: tuple[Path, dict[str, str], dict[str, str], str]) -> None:
    copy = scaffolded[0]
    got = python(copy, "-c", "from repro.harness import incidents, plugin; "
                 f"spec = incidents.INCIDENTS[{NAME!r}]; "
                 f"cfg = incidents.config_for({NAME!r}, None); "
                 "print(spec.marker, spec.backends, cfg.service_init, cfg.provider)")
    assert got.returncode == 0, got.stderr
    assert got.stdout.split() == [NAME, "('docker',)",
                                  str((copy / "repro" / "fixtures" / NAME / "fixed.sh")
                                      .resolve()), "docker"]
    printed = scaffolded[3]
    assert f"pytest repro/{NAME} -m {NAME}" in printed


def test_into_a_team_package_writes_its_own_fixtures_and_says_how_to_register(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    into = tmp_path / "team" / "ourteam_incidents"
    assert cli.main(["new", "cache_stampede", "--marker", "stampede", "--into", str(into)]) == 0
    out = capsys.readouterr().out
    assert 'cache_stampede = "ourteam_incidents.cache_stampede:SPEC"' in out
    assert (into / "__init__.py").is_file()
    assert (into / "fixtures" / "cache_stampede" / "prefix.sh").is_file()
    default = (into / "fixtures" / "default.toml").read_text()
    assert default.startswith("# The configuration under test") and "[cache_stampede]" in default
    assert "FIXTURES: ClassVar[Path]" in (into / "cache_stampede" / "config.py").read_text()
    assert 'marker="stampede"' in (into / "cache_stampede" / "__init__.py").read_text()


@pytest.mark.parametrize(("args", "says"), [
    (["new", "Bad-Name"], "incident name 'Bad-Name' is not a lower-case Python identifier"),
    (["new", "class"], "incident name 'class' is not a lower-case Python identifier"),
    (["new", "mtu_wedge"], "incident mtu_wedge exists (in repro.mtu_wedge)"),
    (["new", "hosts"], "incident name hosts is taken"),
    (["new", "fresh", "--marker", "mtu"], "marker mtu is used by incident mtu_wedge"),
    (["new", "fresh", "--marker", "docker"], "marker docker is one the harness or pytest uses"),
    (["new", "fresh", "--marker", "no-good"], "marker 'no-good' is not a lower-case"),
])
def test_bad_names_are_one_line_and_write_nothing(args: list[str], says: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    into = tmp_path / "pkg"
    assert cli.main([*args, "--into", str(into)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1, err
    assert not into.exists()


def test_an_incident_that_exists_in_the_team_package_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    into = tmp_path / "pkg"
    assert cli.main(["new", "twice", "--into", str(into)]) == 0
    before = digests(into)
    assert cli.main(["new", "twice", "--into", str(into)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert f"{into / 'twice'} exists: choose another name" in err and err.count("\n") == 1
    (into / "twice").rename(tmp_path / "moved")  # the folder gone, its table still there
    assert cli.main(["new", "twice", "--into", str(into)]) == cli.EXIT_USAGE
    assert "fixtures" in capsys.readouterr().err
    assert digests(into).keys() == before.keys() - {p for p in before if p.startswith("twice/")}
