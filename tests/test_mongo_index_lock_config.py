"""Table [mongo_index_lock]: defaults, profiles, paths relative to the TOML file, errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from repro.harness import config as cfgfile
from repro.harness import incidents
from repro.harness.errors import ConfigError
from repro.mongo_index_lock.config import MongoIndexLockConfig


def load(tmp_path: Path, body: str, profile: str = "ci") -> MongoIndexLockConfig:
    path = tmp_path / "conf.toml"
    path.write_text(body)
    cfg: MongoIndexLockConfig = incidents.config_for("mongo_index_lock",
                                                     cfgfile.read_file(path), profile)
    return cfg


def test_defaults_are_the_fixed_startup_on_embedded_postgresql() -> None:
    cfg = incidents.config_for("mongo_index_lock", None)
    assert cfg.kind == "postgresql" and cfg.instances == 100
    assert cfg.service_startup == cfgfile.FIXTURES / "mongo_index_lock" / "fixed.py"
    assert cfg.startup_command("py") == ["py", str(cfg.service_startup)]


def test_shipped_configurations(tmp_path: Path) -> None:
    fixed = incidents.config_for("mongo_index_lock",
                                 cfgfile.read_file(cfgfile.FIXTURES / "default.toml"))
    prefix = incidents.config_for("mongo_index_lock",
                                  cfgfile.read_file(cfgfile.FIXTURES / "prefix.toml"))
    assert fixed.service_startup.name == "fixed.py"
    assert prefix.service_startup.name == "prefix.py"


def test_full_profile_is_the_postmortems_scale() -> None:
    cfg = incidents.config_for("mongo_index_lock", None, "full")
    assert cfg.instances == 100 and cfg.mongo_tickets == 128 and cfg.waves == 10


def test_paths_are_relative_to_the_toml_file(tmp_path: Path) -> None:
    (tmp_path / "start.sh").write_text("#!/bin/sh\nexit 0\n")
    cfg = load(tmp_path, '[mongo_index_lock]\nservice_startup = "start.sh"\n'
                         'service_args = "--check-only --verbose"\n'
                         'db = "postgresql://u:p@127.0.0.1:5433/app"\n')
    assert cfg.service_startup == tmp_path / "start.sh"
    assert cfg.startup_command(sys.executable) == [str(tmp_path / "start.sh"),
                                                   "--check-only", "--verbose"]
    assert cfg.kind == "postgresql"


@pytest.mark.parametrize("body, message", [
    ('db = "mysql"', "db must be one of"),
    ("waves = 200", "waves must be between 1 and instances"),
    ("clients = 1", "clients must be at least 2"),
    ("p99_ms = 0", "p99_ms must be positive"),
    ('service_startup = "nope.py"', "file not found"),
    ("instances = 1.5", "expected an integer"),
    ("tickets = 3", "unknown key"),
])
def test_bad_tables_are_one_line_errors(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        load(tmp_path, f"[mongo_index_lock]\n{body}\n")
    assert "\n" not in str(err.value)


def test_mongodb_uri_kind(tmp_path: Path) -> None:
    assert load(tmp_path, '[mongo_index_lock]\ndb = "mongodb://127.0.0.1:27017/app"\n'
                ).kind == "mongodb"
