"""Shared fixtures for the harness's own tests.

A test module that needs real hosts sets `HOSTS = ("docker", ["a", "b"])`
(provider, roles) and takes `hosts`: one run and its hosts per module, the
run's leftovers checked when the module is done. A backend whose prerequisites
are missing (Docker daemon down, QEMU absent, image not built) fails the test
with one line saying what and how to fix it: `scripts/test` never exits 0
having run nothing real.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from repro.harness.errors import PrerequisiteError
from repro.harness.hosts import open_hosts
from repro.harness.hosts.base import Host
from repro.harness.run import Run, start_run
from tests.leftovers import leftovers
from tests.sshd_stub import sshd  # noqa: F401 (a fixture: a freezable ssh server)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
        ) -> Iterator[Run]:
    r = start_run(tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
                  / "reports")
    yield r
    r.close()
    assert leftovers(r.short) == []


@pytest.fixture(scope="module")
def hosts(run: Run, request: pytest.FixtureRequest) -> Iterator[dict[str, Host]]:
    provider, roles = request.module.HOSTS
    try:
        with open_hosts(provider, run, roles) as hs:
            yield hs
    except PrerequisiteError as exc:
        pytest.fail(f"missing prerequisite: {exc}", pytrace=False)
