"""The embedded PostgreSQL target: start, the lock queue it reproduces, fixtures, clean-up.

Needs Debian's postgresql package (set-up installs it); no Docker.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from repro.harness import procs as _process
from repro.harness.config import FIXTURES
from repro.harness.services.databases import postgres
from repro.harness.services.databases.postgres import PgTarget
from repro.mongo_index_lock.drivers import INDEXES, PgDriver

TMP = Path("/tmp")


def make_scratch(run_id: str, pid: int | None = None, root: Path = TMP) -> Path:
    """A scratch directory like a Run's: /tmp/repro-<hex>, 0700, owner.pid naming the run."""
    scratch = root / f"repro-t{secrets.token_hex(3)}"
    scratch.mkdir(mode=0o700)
    (scratch / "owner.pid").write_text(f"{pid or os.getpid()}\n{run_id}\n")
    return scratch


@pytest.fixture
def scratch() -> Iterator[Path]:
    path = make_scratch("test-live-run")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def server() -> Iterator[PgTarget]:
    path = make_scratch("test-live-run")
    try:
        with postgres.postgres_server(path, "module") as target:
            yield target
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_server_starts_answers_and_leaves_nothing(scratch: Path) -> None:
    with postgres.postgres_server(scratch, "one") as target:
        assert target.embedded and target.data_dir is not None
        assert target.url.startswith("postgresql://postgres@127.0.0.1:")
        assert target.version.split(".")[0].isdigit()
        pid = int((target.data_dir / "postmaster.pid").read_text().split()[0])
        assert _process.pid_alive(pid)
        with postgres.connect(target.url, statement_timeout_ms=5000) as conn:
            assert conn.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
            assert conn.execute("SELECT current_database()").fetchone()[0] == "repro"
    assert not _process.pid_alive(pid)
    assert not (scratch / "repro-pg-one").exists()
    assert not (scratch / "repro-pg-one.log").exists()


def test_ctrl_c_inside_stops_the_server_and_deletes_its_data(scratch: Path) -> None:
    pid = 0
    with pytest.raises(KeyboardInterrupt), \
            postgres.postgres_server(scratch, "interrupted") as target:
        assert target.data_dir is not None
        pid = int((target.data_dir / "postmaster.pid").read_text().split()[0])
        raise KeyboardInterrupt
    assert pid and not _process.pid_alive(pid)
    assert not (scratch / "repro-pg-interrupted").exists()


def test_uri_target_is_used_as_given(server: PgTarget, scratch: Path) -> None:
    with postgres.postgres_target(server.url, scratch) as target:
        assert target.url == server.url and not target.embedded


def test_create_index_if_not_exists_queues_behind_a_write_and_writers_queue_behind_it(
        server: PgTarget) -> None:
    """The mechanism the reproduction rests on, measured directly in pg_locks."""
    driver = PgDriver(server.url, op_timeout_s=30)
    driver.prepare()
    sampler = postgres.connect(server.url, statement_timeout_ms=5000)
    batch = postgres.connect(server.url, statement_timeout_ms=30000, autocommit=False)
    startup = postgres.connect(server.url, statement_timeout_ms=30000)
    writer = postgres.connect(server.url, statement_timeout_ms=30000)
    done: dict[str, bool] = {}
    try:
        batch.execute("UPDATE repro_jobs SET attempts = attempts + 1 WHERE owner = 'batch'")

        def declare() -> None:
            startup.execute("CREATE INDEX IF NOT EXISTS repro_jobs_status_idx "
                            "ON repro_jobs (status)")
            done["declare"] = True

        def write() -> None:
            writer.execute("INSERT INTO repro_jobs (owner, status) VALUES ('w', 'queued')")
            done["write"] = True

        threads = [threading.Thread(target=declare, daemon=True)]
        threads[0].start()
        _process.wait_for(lambda: postgres.lock_sample(sampler, "repro_jobs").waiting_share,
                          timeout=10, what="CREATE INDEX waiting")
        threads.append(threading.Thread(target=write, daemon=True))
        threads[1].start()
        sample = _process.wait_for(
            lambda: (s := postgres.lock_sample(sampler, "repro_jobs")).waiting >= 2 and s,
            timeout=10, what="the writer queued behind CREATE INDEX")
        assert sample.waiting_share == 1 and sample.longest_wait_s > 0
        # the fixed start-up's catalog read does not queue
        names = {r[0] for r in sampler.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'repro_jobs'").fetchall()}
        assert {n for t, n, _ in INDEXES if t == "repro_jobs"} <= names
        assert not done
        batch.commit()
        for t in threads:
            t.join(10)
        assert done == {"declare": True, "write": True}
    finally:
        for conn in (sampler, batch, startup, writer):
            conn.close()
        driver.drop()


def _fixture(name: str, target: PgTarget, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DB_URL": target.url, "DB_KIND": "postgresql"}
    return subprocess.run([sys.executable, str(FIXTURES / "mongo_index_lock" / name), *args],
                          env=env, capture_output=True, text=True, timeout=60)


def test_fixtures_declare_the_indexes_the_harness_builds() -> None:
    for name in ("prefix.py", "fixed.py"):
        ns: dict[str, object] = {}
        exec(compile((FIXTURES / "mongo_index_lock" / name).read_text(), name, "exec"), ns)
        assert ns["INDEXES"] == INDEXES, name


def test_fixed_startup_refuses_without_indexes_and_migrate_makes_them(
        server: PgTarget) -> None:
    driver = PgDriver(server.url, op_timeout_s=30)
    driver.prepare()
    try:
        with postgres.connect(server.url, statement_timeout_ms=10000) as conn:
            for _, name, _ in INDEXES:
                conn.execute(f"DROP INDEX {name}")
        refused = _fixture("fixed.py", server)
        assert refused.returncode == 1 and "missing indexes" in refused.stderr
        assert _fixture("fixed.py", server, "migrate").returncode == 0
        started = _fixture("fixed.py", server)
        assert started.returncode == 0, started.stderr
        assert "catalog read only" in started.stdout
        prefix = _fixture("prefix.py", server)
        assert prefix.returncode == 0 and "4 indexes ensured" in prefix.stdout
    finally:
        driver.drop()


def test_reap_stops_a_dead_runs_server_and_spares_live_ones() -> None:
    """A run killed with SIGKILL leaves its server running; reap finds it by data directory."""
    root = TMP / f"repro-t{secrets.token_hex(3)}"  # a private temp root: other runs untouched
    root.mkdir(mode=0o711)
    dead = make_scratch("test-dead-run", pid=1, root=root)
    live = make_scratch("test-live-run", root=root)
    code = ("import sys; from pathlib import Path\n"
            "from repro.harness.services.databases import postgres\n"
            "with postgres.postgres_server(Path(sys.argv[1]), 'orphan') as t:\n"
            "    print(t.url, flush=True); sys.stdin.read()\n")
    children = []
    try:
        for path in (dead, live):
            child = subprocess.Popen([sys.executable, "-c", code, str(path)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            children.append(child)
            assert child.stdout is not None
            assert child.stdout.readline().startswith("postgresql://")
            child.send_signal(signal.SIGKILL)  # no finally runs: the server is orphaned
            child.wait(10)
        pids = [int((p / "repro-pg-orphan" / "postmaster.pid").read_text().split()[0])
                for p in (dead, live)]
        assert all(_process.pid_alive(p) for p in pids)
        done = postgres.reap(False, {"test-live-run"}, root=root)
        assert any(f"pid {pids[0]}" in line for line in done), done
        assert not _process.pid_alive(pids[0]) and not (dead / "repro-pg-orphan").exists()
        assert _process.pid_alive(pids[1]) and (live / "repro-pg-orphan").exists()
        postgres.reap(True, {"test-live-run"}, root=root)
        assert not _process.pid_alive(pids[1]) and not (live / "repro-pg-orphan").exists()
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
        postgres.reap(True, set(), root=root)
        shutil.rmtree(root, ignore_errors=True)
