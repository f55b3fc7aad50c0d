"""The git server on a Docker host: both transports, the generated shape, clean stop."""

from __future__ import annotations

import pytest

from repro.gitserver import GitServer, RepoSpec
from repro.hosts.base import Host
from repro.run import Run

pytestmark = pytest.mark.docker
HOSTS = ("docker", ["gitserver", "build"])  # provider, roles: see tests/conftest.py


@pytest.mark.parametrize("transport", ["http", "git"])
def test_clone_over_each_transport(run: Run, hosts: dict[str, Host], transport: str) -> None:
    server, build = hosts["gitserver"], hosts["build"]
    with GitServer(server, run) as git:
        repo = git.create(RepoSpec(name="p", size_kb=2048))
        assert 2048 * 1024 <= repo.pack_bytes < 2300 * 1024
        out = build.run(f"rm -rf /tmp/w && git clone -q {repo.url(transport)} /tmp/w && cd /tmp/w"
                        " && git rev-parse HEAD origin/feature origin/release-1.x && git tag",
                        timeout=60).stdout.split()
        assert out[:3] == [repo.tip(), repo.tip("feature"), repo.tip("release-1.x")]
        assert out[3:] == ["v1", "v2", "v3", "v4"]
        # a shallow fetch of an older commit on a non-master branch works (protocol v2)
        older = repo.commit("feature", 1)
        got = build.run(f"rm -rf /tmp/w && git init -q /tmp/w && cd /tmp/w && git fetch -q "
                        f"--depth 1 {repo.url(transport)} {older} && git rev-parse FETCH_HEAD",
                        timeout=60).stdout.strip()
        assert got == older
        build.run("rm -rf /tmp/w", timeout=10)
    left = server.run("ls -d /srv/repro-* /tmp/repro-* 2>/dev/null; "
                      "ps -eo comm | grep -E 'git|python3' || true", timeout=10).stdout
    assert left.strip() == ""


def test_stop_is_idempotent_and_start_failure_cleans_up(run: Run, hosts: dict[str, Host]) -> None:
    git = GitServer(hosts["gitserver"], run)
    git.stop()  # never started: nothing to do
    with git:
        pass
    git.stop()
