"""The MongoDB adapter: serverStatus parsing and mongod's command line (pure), and the
adapter against a real mongod wherever one exists (none can be installed on this
machine: there those tests skip, saying so). No mongomock, no fake server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from repro.harness.services.databases import mongodb
from repro.mongo_index_lock.drivers import INDEXES, MongoDriver

# serverStatus fragments in the shapes MongoDB 6.0 and 7.0+ answer with
STATUS_6 = {
    "wiredTiger": {"concurrentTransactions": {
        "write": {"out": 3, "available": 5, "totalTickets": 8},
        "read": {"out": 8, "available": 0, "totalTickets": 8}}},
    "locks": {"Global": {"timeAcquiringMicros": {"r": 1_000_000, "w": 500_000}},
              "Database": {"timeAcquiringMicros": {"W": 250_000}}},
}
STATUS_7 = {
    "queues": {"execution": {
        "write": {"out": 1, "available": 127, "totalTickets": 128},
        "read": {"normalPriority": {"out": 2, "available": 126, "totalTickets": 128}}}},
    "locks": {"Global": {"timeAcquiringMicros": {"w": 10}}},
}


def test_server_status_before_7_0() -> None:
    s = mongodb.parse_server_status(STATUS_6)
    assert (s.read_out, s.read_available, s.read_total) == (8, 0, 8)
    assert (s.write_out, s.write_available, s.write_total) == (3, 5, 8)
    assert s.lock_acquire_s == pytest.approx(1.75)
    assert s.exhausted


def test_server_status_from_7_0() -> None:
    s = mongodb.parse_server_status(STATUS_7)
    assert (s.read_available, s.read_total, s.write_available) == (126, 128, 127)
    assert s.lock_acquire_s == pytest.approx(1e-5)
    assert not s.exhausted


def test_mongod_command_pins_a_small_ticket_pool() -> None:
    old = mongodb.mongod_command("mongod", (6, 0, 14), Path("/tmp/repro-x/db"), 27999, 8)
    assert "wiredTigerConcurrentWriteTransactions=8" in old
    assert "wiredTigerConcurrentReadTransactions=8" in old
    assert not any("AdjustmentAlgorithm" in a for a in old)
    new = mongodb.mongod_command("mongod", (7, 0, 2), Path("/tmp/repro-x/db"), 27999, 8)
    assert "storageEngineConcurrencyAdjustmentAlgorithm=fixedConcurrentTransactions" in new
    assert new[new.index("--bind_ip") + 1] == "127.0.0.1"


def test_database_name_from_uri() -> None:
    assert mongodb.database_name("mongodb://127.0.0.1:1/jobs") == "jobs"
    assert mongodb.database_name("mongodb://127.0.0.1:1/") == mongodb.DATABASE


def test_missing_mongod_is_a_prerequisite_error(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    from repro.harness.errors import PrerequisiteError

    monkeypatch.setattr(mongodb, "find_mongod", lambda: None)
    with pytest.raises(PrerequisiteError, match="mongod"), \
            mongodb.mongod_server(tmp_path, "x"):
        pass


# ---- against a real server ------------------------------------------------------------

needs_mongodb = pytest.mark.skipif(not mongodb.available(), reason=mongodb.MISSING_REASON)


@pytest.fixture(scope="module")
def target() -> Iterator[mongodb.MongoTarget]:
    scratch = Path("/tmp") / "repro-tmongo"
    scratch.mkdir(mode=0o700, exist_ok=True)
    try:
        with mongodb.mongo_target("mongodb", scratch, "adapter", tickets=8) as t:
            yield t
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@needs_mongodb
def test_real_server_reports_its_small_ticket_pool(target: mongodb.MongoTarget) -> None:
    with mongodb.client(target.url) as mongo:
        sample = mongodb.ticket_sample(mongo)
    if target.embedded:
        assert sample.read_total == 8 and sample.write_total == 8
    assert sample.read_available > 0 and not sample.exhausted


@needs_mongodb
def test_real_server_workload_and_index_catalog(target: mongodb.MongoTarget) -> None:
    driver = MongoDriver(target.url, target.database, op_timeout_s=10)
    driver.prepare()
    try:
        with mongodb.client(target.url) as mongo:
            names = set(mongo[target.database]["repro_jobs"].index_information())
        assert {n for t, n, _ in INDEXES if t == "repro_jobs"} <= names
        client = driver.client("client0")
        client.write(1)
        client.read(1)
        client.close()
        batch = driver.batch()
        assert batch.run(0.2) > 0
        batch.close()
        sampler = driver.sampler()
        assert sampler.sample()["source"] == "serverStatus"
        sampler.close()
    finally:
        driver.drop()


@needs_mongodb
def test_embedded_mongod_leaves_nothing(tmp_path: Path) -> None:
    if not mongodb.find_mongod():
        pytest.skip("`mongod` is not on PATH (a URI alone cannot show the embedded server)")
    scratch = Path("/tmp") / "repro-tmongo2"
    scratch.mkdir(mode=0o700, exist_ok=True)
    try:
        with mongodb.mongod_server(scratch, "leaves") as t:
            assert t.dbpath is not None and t.dbpath.exists()
        assert not (scratch / "repro-mongo-leaves").exists()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
