"""The package works installed as a wheel into another project.

Builds repro's wheel from a copy of this checkout (offline: --no-build-isolation with the
.venv's setuptools and wheel), installs it into a fresh venv whose dependencies come from
the project's .venv (a .pth line: nothing is downloaded), then, in a temporary team
project: `repro new` into the team's own package (its own fixtures), the package
registered through the `repro.incidents` entry point and installed (--no-deps --no-index),
and the scaffolded incident run both ways from that project's directory, through
`pytest` and through `repro run`: the fixed configuration passes, the pre-fix one is
flagged, the reports are in the project's reports/ (none in site-packages). The installed
harness's own incidents are found by pytest too (`--pyargs repro`).

Docker: the scaffolded incident starts one container per direction (~6 s each).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from repro.harness import names
from repro.harness.report.record import read_report
from tests.leftovers import leftovers

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
NAME, PACKAGE = "svc_down", "team_incidents"
STEP_TIMEOUT_S = 300
TEAM_PYPROJECT = f"""\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "team-incidents"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["repro"]

[project.entry-points."repro.incidents"]
{NAME} = "{PACKAGE}.{NAME}:SPEC"

[tool.setuptools.packages.find]
include = ["{PACKAGE}*"]
"""


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("PYTEST")}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=STEP_TIMEOUT_S, check=False)


def ok(got: subprocess.CompletedProcess[str]) -> str:
    assert got.returncode == 0, (got.stdout[-4000:], got.stderr[-4000:])
    return got.stdout


def build_wheel(tmp: Path) -> Path:
    src = tmp / "src"
    shutil.copytree(ROOT / "repro", src / "repro",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ok(run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-index",
            "--no-build-isolation", "-w", str(tmp / "dist"), str(src)], tmp))
    (wheel,) = (tmp / "dist").glob("pytest_repro-*.whl")
    return wheel


def fresh_venv(tmp: Path) -> Path:
    """A venv with nothing of its own; its dependencies (and pip) from the project's .venv."""
    venv = tmp / "venv"
    ok(run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp))
    site = Path(run([str(venv / "bin" / "python"), "-c",
                     "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp)
                .stdout.strip())
    (site / "_project_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def results(reports: Path) -> dict[str, str]:
    """label (without its attempt number) -> verdict of the last attempt, in the latest run."""
    report = read_report(reports / "latest" / "results.json")
    return {r.label.split(" (attempt")[0]: r.verdict.outcome.value for r in report.results
            if not r.superseded}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="module")
def team(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(the fresh venv, the installed repro's folder, the team project with its incident)."""
    tmp = tmp_path_factory.mktemp("wheel")
    venv = fresh_venv(tmp)
    python = str(venv / "bin" / "python")
    ok(run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], tmp))
    installed = Path(ok(run([python, "-c", "import repro; print(repro.__file__)"], tmp))
                     .strip()).parent
    project = tmp / "team"
    project.mkdir()
    ok(run([str(venv / "bin" / "repro"), "new", NAME, "--into", PACKAGE], project))
    (project / "pyproject.toml").write_text(TEAM_PYPROJECT)
    ok(run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
            "--no-build-isolation", "-e", "."], project))
    return venv, installed, project


def test_the_wheel_ships_the_fixtures_readmes_and_templates(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        files = set(whl.namelist())
    for path in ("repro/fixtures/default.toml", "repro/fixtures/prefix.toml",
                 "repro/fixtures/mtu_wedge/prefix.sh", "repro/fixtures/mongo_index_lock/fixed.py",
                 "repro/mtu_wedge/README.md",
                 "repro/harness/scaffold/templates/incident/check.py.tmpl"):
        assert path in files, path


def test_installed_repro_uses_its_own_fixtures_and_refuses_to_scaffold_into_itself(
        team: tuple[Path, Path, Path]) -> None:
    venv, installed, project = team
    assert installed.is_relative_to(venv)
    show = "from repro.harness import config; print(config.FIXTURES)"
    fixtures = ok(run([str(venv / "bin" / "python"), "-c", show], project)).strip()
    assert Path(fixtures) == installed / "fixtures"
    got = run([str(venv / "bin" / "repro"), "new", "other"], project)
    assert got.returncode == 2 and "repro is installed" in got.stderr
    assert got.stderr.count("\n") == 1 and not (installed / "other").exists()


def test_pytest_finds_the_installed_incidents_and_the_teams(team: tuple[Path, Path, Path]
                                                          ) -> None:
    venv, _, project = team
    got = ok(run([str(venv / "bin" / "python"), "-m", "pytest", "-q", "--collect-only",
                  "-p", "no:cacheprovider", "--pyargs", "repro", PACKAGE, "-m",
                  f"mtu or {NAME}"], project))
    assert "mtu_wedge/test_mtu_wedge.py::test_configuration_under_test" in got  # site-packages
    assert f"{PACKAGE}/{NAME}/test_{NAME}.py::test_prefix_fixture_is_flagged" in got


def test_the_teams_incident_runs_both_ways_through_pytest_and_repro_run(
        team: tuple[Path, Path, Path]) -> None:
    venv, installed, project = team
    reports = project / "reports"
    ok(run([str(venv / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider",
            f"{PACKAGE}/{NAME}", "-m", NAME], project))
    first = (reports / "latest").resolve()
    assert results(reports) == {"under test": "pass", "prefix fixture": "fail"}
    ok(run([str(venv / "bin" / "repro"), "run", NAME], project))
    second = (reports / "latest").resolve()
    assert second != first and second.parent == reports
    assert results(reports) == {"under test": "pass", "prefix fixture": "fail"}
    assert not (installed / "reports").exists() and not (installed.parent / "reports").exists()
    for run_dir in (first, second):
        assert leftovers(names.short(run_dir.name)) == []
