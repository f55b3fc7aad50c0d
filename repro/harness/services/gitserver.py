"""A git server on one of the run's hosts, serving generated repositories.

Model: `GitServer(host, run)` is a context manager. Entering it copies two
stdlib-only scripts to the host (gitgen.py, githttp.py beside this file) and
starts `git daemon` (git://, port 9418) and a smart-HTTP server (http://,
port 8080, `git http-backend` behind githttp.py), both serving
`/srv/repro-<short>-git/`; it is ready when `git ls-remote` answers through
each of them on the host itself. `create(RepoSpec)` generates a repository
there (repro/harness/services/gitgen.py: master plus branches forked at chosen commits,
annotated tags, random incompressible content of a chosen total size) and
returns a `Repo` that knows every commit id. Leaving stops both servers and
removes the directory and the scripts.

Under packet loss, transport matters: git's `http.lowSpeedLimit`/`lowSpeedTime`
bound a stalled HTTP transfer, nothing bounds a stalled git:// one.
"""

from __future__ import annotations

import ast
import contextlib
import shlex
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal

from repro.harness.errors import HostCommandError, ProvisionError
from repro.harness.hosts.base import Host
from repro.harness.run import Run

Transport = Literal["http", "git"]
HTTP_PORT = 8080
GIT_PORT = 9418
READY_TIMEOUT_S = 60.0
CMD_TIMEOUT_S = 60.0  # generous: a TCG guest on a busy machine stalls for tens of seconds
GENERATE_TIMEOUT_S = 300.0
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class BranchSpec:
    name: str
    fork: int      # the master commit it forks from (0 = the root commit)
    commits: int   # commits of its own on top


@dataclass(frozen=True)
class RepoSpec:
    name: str = "project"
    size_kb: int = 16 * 1024
    master_commits: int = 20
    branches: tuple[BranchSpec, ...] = (BranchSpec("feature", 10, 3),
                                        BranchSpec("release-1.x", 4, 2))
    tag_every: int = 5
    seed: int = 1

    def validate(self) -> None:
        if self.master_commits < 1 or self.size_kb < 1:
            raise ValueError("a repository needs at least one commit and one KiB")
        for b in self.branches:
            if not 0 <= b.fork < self.master_commits or b.commits < 0:
                raise ValueError(f"branch {b.name}: fork {b.fork} outside master's "
                                 f"{self.master_commits} commits, or negative commits")
            if b.name == "master" or not b.name.replace("-", "").replace(".", "").isalnum():
                raise ValueError(f"bad branch name {b.name!r}")

    @property
    def commit_count(self) -> int:
        return self.master_commits + sum(b.commits for b in self.branches)


@dataclass(frozen=True)
class Repo:
    spec: RepoSpec
    path: str                                # on the server host
    branches: dict[str, tuple[str, ...]]     # branch -> commit ids, oldest first
    tags: dict[str, str]                     # tag -> commit id it points at
    pack_bytes: int
    urls: dict[str, str] = field(default_factory=dict)  # transport -> clone URL

    def tip(self, branch: str = "master") -> str:
        return self.branches[branch][-1]

    def commit(self, branch: str, back: int = 0) -> str:
        """The commit `back` steps behind the tip of `branch` (on its own commits)."""
        commits = self.branches[branch]
        return commits[max(0, len(commits) - 1 - back)]

    def url(self, transport: Transport = "http") -> str:
        return self.urls[transport]


class GitServer:
    def __init__(self, host: Host, run: Run):
        self.host = host
        self.root = f"/srv/{run.name('git')}"
        self._scripts = f"/tmp/{run.name('gitserver')}"
        self._started = False

    def __enter__(self) -> GitServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def url(self, name: str, transport: Transport = "http") -> str:
        if transport == "http":
            return f"http://{self.host.address}:{HTTP_PORT}/{name}.git"
        return f"git://{self.host.address}:{GIT_PORT}/{name}.git"

    def start(self) -> None:
        h, s = self.host, self._scripts
        self._started = True  # from the first command on, stop() has something to remove
        h.run(f"mkdir -p {self.root} {s}", timeout=CMD_TIMEOUT_S)
        h.put((HERE / "gitgen.py").read_bytes(), f"{s}/gitgen.py", 0o755)
        h.put((HERE / "githttp.py").read_bytes(), f"{s}/githttp.py", 0o755)
        h.run(f"git daemon --detach --reuseaddr --export-all --base-path={self.root}"
              f" --port={GIT_PORT} --pid-file={s}/daemon.pid {self.root}", timeout=CMD_TIMEOUT_S)
        h.run(f"setsid python3 {s}/githttp.py {self.root} {HTTP_PORT} > {s}/http.log 2>&1"
              f" < /dev/null & echo $! > {s}/http.pid", timeout=CMD_TIMEOUT_S)
        probe = self.create(RepoSpec(name="repro-ready", size_kb=1, master_commits=1,
                                     branches=(), tag_every=0))
        self._wait_ready(probe)

    def _wait_ready(self, probe: Repo) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        local = {"git": f"git://127.0.0.1:{GIT_PORT}/{probe.spec.name}.git",
                 "http": f"http://127.0.0.1:{HTTP_PORT}/{probe.spec.name}.git"}
        pending = dict(local)
        while pending:
            for transport, url in list(pending.items()):
                res = self.host.run(f"git ls-remote {url}", timeout=CMD_TIMEOUT_S, check=False)
                if res.ok and probe.tip() in res.stdout:
                    del pending[transport]
            if pending and time.monotonic() > deadline:
                raise ProvisionError(f"{self.host.name}: git server did not answer over "
                                     f"{', '.join(pending)} within {READY_TIMEOUT_S:.0f} s")
            if pending:
                time.sleep(0.1)  # condition poll

    def create(self, spec: RepoSpec) -> Repo:
        """Generate `spec` on the server; a repository of that name is replaced."""
        spec.validate()
        path = f"{self.root}/{spec.name}.git"
        raw = asdict(spec)
        raw["path"] = path
        raw["branches"] = [dict(b) for b in raw["branches"]]
        try:
            res = self.host.run(f"rm -rf {path} && python3 {self._scripts}/gitgen.py "
                                f"{shlex.quote(repr(raw))}", timeout=GENERATE_TIMEOUT_S)
        except HostCommandError as exc:
            raise ProvisionError(f"{self.host.name}: generating {spec.name} failed: {exc}") \
                from exc
        out = ast.literal_eval(res.stdout.strip().splitlines()[-1])
        return Repo(spec=spec, path=path,
                    branches={b: tuple(c) for b, c in out["branches"].items()},
                    tags=dict(out["tags"]), pack_bytes=int(out["pack_bytes"]),
                    urls={t: self.url(spec.name, t) for t in ("http", "git")})

    def remove(self, repo: Repo) -> None:
        self.host.run(f"rm -rf {repo.path}", timeout=30, check=False)

    def stop(self) -> None:
        """Idempotent: stop both servers, remove the repositories and the scripts."""
        if not self._started:
            return
        s = self._scripts
        with contextlib.suppress(HostCommandError):  # a host already gone left nothing behind
            self.host.run(f"for p in {s}/daemon.pid {s}/http.pid; do [ -f $p ] && "
                          f"kill $(cat $p); done; rm -rf {self.root} {s}", timeout=30,
                          check=False)
        self._started = False
