"""Configuration errors: one line naming the file and the key; pytest usage error.
(tests/test_bad_input.py drives every class of them through the real entry points.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from repro.harness import config, incidents
from repro.harness.errors import ConfigError
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
    ('[nosuch]\nx = 1\n', "nosuch: unknown incident table [nosuch]"),
    ('[mtu_wedge]\nduration_s = nan\n', "mtu_wedge.duration_s: expected a finite number"),
    ('[mtu_wedge]\nmax_gap_s = -inf\n', "mtu_wedge.max_gap_s: expected a finite number"),
    ('[mtu_wedge]\nhost_init = "."\n', "mtu_wedge.host_init: not a regular file: "),
    ('[mtu_wedge]\nhost_init = ""\n', "mtu_wedge.host_init: expected a path"),
    ('[mtu_wedge]\nprovider = "vmware"\n',
     "mtu_wedge.provider: unknown provider 'vmware'; known: docker, ec2, qemu"),
    ('[mtu_wedge]\nprovider = "qemu:x"\n', "mtu_wedge.provider: provider 'qemu' takes no image"),
    ('[mtu_wedge]\nprovider = "ec2:x"\n', "mtu_wedge.provider: not an image for ec2: 'x'"),
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


def test_a_file_that_is_not_utf8_is_one_line_with_its_line_number(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes("[mtu_wedge]\n# café\nstreams = 3\n".encode("latin-1"))
    with pytest.raises(ConfigError) as err:
        config.read_file(path)
    assert str(err.value) == f"{path}: not UTF-8 text (byte 0xe9 on line 2)"


def test_a_folder_is_not_a_configuration_file(tmp_path):
    with pytest.raises(ConfigError) as err:
        config.read_file(tmp_path)
    assert str(err.value) == f"{tmp_path}: not a regular file"


def test_no_permission_is_one_line_for_the_file_and_for_a_path_key(tmp_path, monkeypatch):
    """As root nothing is unreadable by mode bits, so the refusal is simulated at open()."""
    path = write(tmp_path, '[mtu_wedge]\nhost_init = "init.sh"\n')
    real_open = Path.open
    refused = {"my.toml"}

    def refuse(self: Path, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if self.name in refused:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)  # type: ignore[arg-type]
    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(ConfigError) as err:
        config.read_file(path)
    assert str(err.value) == f"{path}: cannot read: permission denied"
    refused.clear()
    f = config.read_file(path)
    refused.add("init.sh")
    with pytest.raises(ConfigError) as err:
        incidents.validate_file(f)
    assert str(err.value) == (f"{path}:mtu_wedge.host_init: cannot read: "
                              f"{(tmp_path / 'init.sh').resolve()}: permission denied")


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf[mtu_wedge]\nstreams = 2\n")
    assert config.read_file(path).tables == {"mtu_wedge": {"streams": 2}}


def test_a_good_provider_with_an_image_is_accepted(tmp_path):
    cfg = load(write(tmp_path, '[mtu_wedge]\nprovider = "docker:repro-base:latest"\n'))
    assert cfg.provider == "docker:repro-base:latest"


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
