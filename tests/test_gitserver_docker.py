"""The git server on a Docker host: both transports, the generated shape, clean stop,
and start failures that raise one line and leave nothing behind.

A start fails for real here two ways: a port the server needs is taken by another
listener (git daemon --detach and the HTTP server both start "fine", then never answer:
the readiness wait gives up, READY_TIMEOUT_S shortened for the test), and the
repository root cannot be made (/srv is a file: the first command fails).
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator

import pytest

from repro.harness.errors import HostCommandError, ProvisionError
from repro.harness.hosts.base import Host
from repro.harness.run import Run
from repro.harness.services import gitserver
from repro.harness.services.gitserver import GIT_PORT, HTTP_PORT, GitServer, RepoSpec

pytestmark = pytest.mark.docker
HOSTS = ("docker", ["gitserver", "build"])  # provider, roles: see tests/conftest.py

# binds the port before the parent exits (so the port is taken when the command returns),
# then closes every connection at once: a client fails fast instead of hanging
OCCUPY = """
import os, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {port}))
s.listen(16)
pid = os.fork()
if pid:
    print(pid)
    sys.exit(0)
os.setsid()
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
while True:
    s.accept()[0].close()
"""


def left(server: Host) -> str:
    """What of a git server is on the host: its directories and processes."""
    return server.run("ls -d /srv/repro-* /tmp/repro-* 2>/dev/null; "
                      "ps -eo comm | grep -E 'git|python3' || true", timeout=10).stdout.strip()


@contextlib.contextmanager
def occupied(server: Host, port: int) -> Iterator[int]:
    """Another listener on `port` of the server host for the block's duration."""
    pid = int(server.run(f"python3 -c {shlex.quote(OCCUPY.format(port=port))}",
                         timeout=10).stdout.split()[-1])
    try:
        yield pid
    finally:
        server.run(f"kill -9 {pid}; while kill -0 {pid} 2>/dev/null; do sleep 0.05; done",
                   timeout=10)  # condition poll: the process is gone (reaped by init)


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
    assert left(server) == ""


def test_stop_is_idempotent(run: Run, hosts: dict[str, Host]) -> None:
    server = hosts["gitserver"]
    git = GitServer(server, run)
    git.stop()  # never started: nothing to do
    assert left(server) == ""
    with git:
        assert "githttp.py" in server.run("ps -eo args", timeout=10).stdout
    git.stop()
    assert left(server) == ""


@pytest.mark.parametrize("transport", ["http", "git"])
def test_start_fails_on_a_taken_port_and_leaves_nothing(run: Run, hosts: dict[str, Host],
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        transport: str) -> None:
    server = hosts["gitserver"]
    monkeypatch.setattr(gitserver, "READY_TIMEOUT_S", 3.0)
    with occupied(server, HTTP_PORT if transport == "http" else GIT_PORT):
        with pytest.raises(ProvisionError) as err, GitServer(server, run):
            pytest.fail("the git server started on a port another listener holds")
        # the other server did start: stopping it is what the failed start must do
        assert "git daemon" not in server.run("ps -eo args", timeout=10).stdout
        assert "githttp.py" not in server.run("ps -eo args", timeout=10).stdout
    assert str(err.value) == (f"{server.name}: git server did not answer over {transport} "
                              "within 3 s")
    assert left(server) == ""


def test_start_fails_without_a_repository_root_and_leaves_nothing(run: Run,
                                                                  hosts: dict[str, Host]
                                                                  ) -> None:
    server = hosts["gitserver"]
    server.run("mv /srv /srv.repro-saved && touch /srv", timeout=10)
    try:
        with pytest.raises(HostCommandError) as err, GitServer(server, run):
            pytest.fail("the git server started without a repository root")
    finally:
        server.run("rm -f /srv && mv /srv.repro-saved /srv", timeout=10)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{server.name}: `mkdir -p {GitServer(server, run).root} ")
    assert message.endswith("Not a directory"), message
    assert left(server) == ""
