"""When mongo_index_lock may skip (report it as not run) and when it must run.

Issue 10: skipping stays only for a backend the user could not have. The
configuration under test runs on PostgreSQL by default and there never skips;
MongoDB with no server to be had is "not run", with the reason.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from repro.harness import config as cfgfile
from repro.harness import incidents
from repro.harness.services.databases import mongodb
from repro.mongo_index_lock import scenario
from repro.mongo_index_lock.config import MongoIndexLockConfig

TESTS = Path(scenario.__file__).with_name("test_mongo_index_lock.py")


@pytest.fixture
def no_mongodb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mongodb, "find_mongod", lambda: None)
    monkeypatch.delenv(mongodb.URL_ENV, raising=False)


def _cfg(db: str) -> MongoIndexLockConfig:
    return MongoIndexLockConfig(db=db)


def _reason(db: str) -> str | None:
    return scenario.not_run_reason(_cfg(db), scenario.ASKED_BY_CONFIG)


@pytest.mark.usefixtures("no_mongodb")
def test_the_default_configuration_runs_on_postgresql_without_mongodb() -> None:
    cfg = incidents.config_for("mongo_index_lock",
                               cfgfile.read_file(cfgfile.FIXTURES / "default.toml"))
    assert cfg.kind == "postgresql"
    assert scenario.not_run_reason(cfg, scenario.ASKED_BY_CONFIG) is None


@pytest.mark.usefixtures("no_mongodb")
@pytest.mark.parametrize("db", ["postgresql", "postgresql://repro@127.0.0.1:1/repro",
                                "mongodb://127.0.0.1:1/repro"])
def test_postgresql_and_any_uri_always_run(db: str) -> None:
    assert _reason(db) is None


@pytest.mark.usefixtures("no_mongodb")
def test_mongodb_with_no_server_is_not_run_with_the_reason() -> None:
    reason = _reason("mongodb")
    assert reason is not None and reason.startswith("not run: ")
    assert 'db = "mongodb"' in reason and "mongod" in reason and mongodb.URL_ENV in reason
    extra = scenario.not_run_reason(dataclasses.replace(_cfg("postgresql"), db="mongodb"),
                                    scenario.ASKED_BY_EXTRA)
    assert extra is not None and "also run on MongoDB" in extra


def test_mongodb_runs_where_a_server_can_be_had(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(mongodb.URL_ENV, raising=False)
    monkeypatch.setattr(mongodb, "find_mongod", lambda: "/usr/bin/mongod")
    assert _reason("mongodb") is None
    monkeypatch.setattr(mongodb, "find_mongod", lambda: None)
    monkeypatch.setenv(mongodb.URL_ENV, "mongodb://127.0.0.1:27017/repro")
    assert _reason("mongodb") is None


def test_the_only_skip_in_the_mongo_tests_is_not_run() -> None:
    """Every pytest.skip in the incident's tests sits in the not-run helper, and both
    directions of the configuration go through it."""
    tree = ast.parse(TESTS.read_text())
    skips: list[str] = []
    for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        for call in (c for c in ast.walk(fn) if isinstance(c, ast.Call)):
            if ast.unparse(call.func) in ("pytest.skip", "skip"):
                skips.append(fn.name)
    assert skips == ["_unless_runnable"]
    text = TESTS.read_text()
    # both directions of the configuration go through the same reason (repro.harness.directions)
    assert "not_run=lambda cfg: scenario.not_run_reason(cfg, scenario.ASKED_BY_CONFIG)" in text
