"""Database targets with real engines: PostgreSQL (embedded or URI) and MongoDB.

Model: a configuration names a target as a *spec*: "postgresql" (a throwaway
server from Debian's packages, started by the harness), "mongodb" (a `mongod`
from PATH, started likewise), or a postgresql:// / mongodb:// URI used as
given. `open_target(spec, scratch)` is a context manager that yields the
target (its URL, and where it lives if we started it) and always stops and
deletes what it started, on a pass, a failure or Ctrl-C. `reap()` does the
same for servers left behind by runs that died.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from repro.harness.errors import ConfigError
from repro.harness.services.databases.mongodb import MongoTarget
from repro.harness.services.databases.postgres import PgTarget

KINDS = ("postgresql", "mongodb")
Target = PgTarget | MongoTarget


def kind_of(spec: str) -> str:
    """"postgresql" or "mongodb" for a spec; ConfigError for anything else."""
    if spec in KINDS:
        return spec
    if spec.startswith(("postgresql://", "postgres://")):
        return "postgresql"
    if spec.startswith(("mongodb://", "mongodb+srv://")):
        return "mongodb"
    raise ConfigError(f"db must be one of {', '.join(KINDS)} or a postgresql:// or "
                      f"mongodb:// URI, got {spec!r}")


@contextlib.contextmanager
def open_target(spec: str, scratch: Path, name: str = "main", *, max_connections: int = 200,
                mongo_tickets: int = 8) -> Iterator[Target]:
    from repro.harness.services.databases import mongodb, postgres

    if kind_of(spec) == "postgresql":
        with postgres.postgres_target(spec, scratch, name,
                                      max_connections=max_connections) as pg:
            yield pg
    else:
        with mongodb.mongo_target(spec, scratch, name, tickets=mongo_tickets) as mongo:
            yield mongo


def reap(all_runs: bool, live_run_ids: set[str]) -> list[str]:
    """Stop every harness database server of a dead run (both engines) and delete its data."""
    from repro.harness.services.databases import mongodb, postgres

    return postgres.reap(all_runs, live_run_ids) + mongodb.reap(all_runs, live_run_ids)
