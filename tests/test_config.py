"""Configuration errors: one line naming the file and the key; pytest usage error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from repro import config, incidents
from repro.errors import ConfigError
from repro.mtu_wedge.config import MtuWedgeConfig

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "my.toml"
    p.write_text(text)
    (tmp_path / "init.sh").write_text("#!/bin/sh\n")
    return p


def load(path: Path, profile: str = "ci") -> MtuWedgeConfig:
    f = config.read_file(path)
    incidents.validate_file(f, profile)
    cfg: MtuWedgeConfig = incidents.config_for("mtu_wedge", f, profile)
    return cfg


def test_paths_are_relative_to_the_file_and_defaults_fill_in(tmp_path):
    cfg = load(write(tmp_path, '[mtu_wedge]\nhost_init = "init.sh"\nstreams = 4\n'))
    assert cfg.host_init == (tmp_path / "init.sh").resolve()
    assert cfg.streams == 4 and cfg.max_gap_s == 2.0 and cfg.heartbeat_interval_s == 0.25


def test_full_profile_uses_the_postmortem_scale(tmp_path):
    cfg = load(write(tmp_path, '[mtu_wedge]\nhost_init = "init.sh"\n'), profile="full")
    assert cfg.streams == 20 and cfg.duration_s == 60.0


@pytest.mark.parametrize("text, expected", [
    ("[mtu_wedge\n", "not valid TOML"),
    ('[mtu_wedge]\nhost_init = "init.sh"\nstreamz = 3\n', "mtu_wedge.streamz: unknown key"),
    ('[mtu_wedge]\nhost_init = "nope.sh"\n', "mtu_wedge.host_init: file not found"),
    ('[mtu_wedge]\nhost_init = "init.sh"\nstreams = "twenty"\n',
     "mtu_wedge.streams: expected an integer, got 'twenty'"),
    ('[mtu_wedge]\nhost_init = "init.sh"\nmax_gap_s = true\n', "mtu_wedge.max_gap_s: expected a"),
    ('[mtu_wedge]\nhost_init = "init.sh"\nstreams = 0\n', "streams must be at least 1"),
    ('[nosuch]\nx = 1\n', "unknown incident table [nosuch]"),
])
def test_bad_configuration_is_one_line_naming_file_and_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load(path)
    message = str(err.value)
    assert expected in message and str(path) in message and "\n" not in message


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        config.read_file(tmp_path / "absent.toml")


def test_pytest_reports_a_bad_config_as_a_usage_error_without_traceback(tmp_path):
    path = write(tmp_path, '[mtu_wedge]\nhost_init = "init.sh"\nstreams = "many"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "repro" / "mtu_wedge"), "--repro-config",
         str(path), "-p", "no:cacheprovider"],
        capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 4  # pytest's usage error
    assert "mtu_wedge.streams: expected an integer, got 'many'" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_a_table_that_leaves_a_path_key_out_gets_the_shipped_fixture(tmp_path):
    cfg = load(write(tmp_path, "[mtu_wedge]\nstreams = 4\n"))
    assert cfg.host_init == config.FIXTURES / "mtu_wedge" / "fixed.sh"
