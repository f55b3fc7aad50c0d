"""Docker hosts: containers from the base image on a bridge network of the run.

Model: one bridge network per run (`repro-<short>-net`, Linux bridge `rp<short>br`,
its own subnet chosen by Docker's IPAM) and one container per role
(`repro-<short>-<role>`), each running sshd with the image's baked Ed25519 host
key and the run's login key in authorized_keys. Containers get NET_ADMIN (faults
act inside their own network namespace) and conntrack accounting on.

Control goes through `docker exec` (the SDK): it keeps working when a fault has
cut the host off the network, which is exactly when heal and cleanup must run.
`ssh()` gives the path a user takes: a fabric Connection to sshd.
A host is ready when sshd accepts a real login with the run's key.

Start-up, measured (benchmarks/bench_docker.py; figures in benchmarks/README.md): the
floor is `docker run` to sshd's banner; what repro adds is the login files and the
login. The login files (authorized_keys, the run's key for host-to-host ssh, the ssh
client config) are bind-mounted at /root/.ssh from a directory of the run's scratch
dir where the daemon is this machine and the image's /root/.ssh is known to be empty
(the base image and images baked from it): nothing to copy. Elsewhere they are copied
in before start (`put_archive` on a created container costs a mount of its root file
system: some 50 to 140 ms here). The login wait polls the port every LOGIN_POLL_S (a
refused SYN costs the host nothing) and logs in over the first connection sshd accepts.
Hosts start all at once (up to MAX_PARALLEL_STARTS).

CPU: the hosts of a run share at most all CPUs but half of one (CFS quota per
container, `cpu_cap`). In production the observer is another machine; here it
is the runner, and without the cap a flood of 20 bulk ssh streams starved every
process outside the containers' cgroup for 5 to 37 s (measured on this 2-core
machine: the heartbeat, the runner stopping the flood, an unrelated loop), which
made the observation worthless. With the cap the runner keeps the rest. An incident
whose subject is a host's CPU quota (container_awareness: the JVM sizes its pools from it)
gives that role its own quota (`DockerProvider(cpus={role: n})`); the other roles keep
the cap.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tarfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
import docker.errors
import paramiko

from repro.harness import names
from repro.harness.errors import HostCommandError, PrerequisiteError, ProvisionError
from repro.harness.hosts.base import CommandResult, Host
from repro.harness.hosts.sshlogin import SSH_CLIENT_CONFIG, connection, wait_for_login

if TYPE_CHECKING:
    import fabric
    from docker.models.containers import Container
    from docker.models.networks import Network

    from repro.harness.run import Run

BASE_IMAGE = "repro-base:latest"
API_TIMEOUT_S = 120
READY_TIMEOUT_S = 30.0
LOGIN_POLL_S = 0.005  # between refused connects while sshd starts (about 10 ms after start)
MAX_PARALLEL_STARTS = 16
LOGIN_DIR = "/root/.ssh"
TIMED_OUT = (124, 137)  # exit codes of coreutils `timeout` (TERM, then KILL)


_LIVE: set[str] = set()  # addresses of the hosts this process started and has not removed


def on_this_kernel(address: str) -> bool:
    """Whether `address` is one of this process's live Docker hosts: its TCP stack is the
    runner's own kernel, which completes a handshake in well under a millisecond (at most
    0.2 ms beside a 20-stream flood, load up to 8.8; benchmarks/bench_docker.py). The
    heartbeat's TCP leg uses a tight timeout for them."""
    return address in _LIVE


def client() -> docker.DockerClient:
    try:
        c = docker.from_env(timeout=API_TIMEOUT_S, max_pool_size=MAX_PARALLEL_STARTS + 4)
        c.ping()
        return c
    except docker.errors.DockerException as exc:
        raise PrerequisiteError("the Docker daemon does not answer",
                                "run setup/setup.sh docker (it starts dockerd)") from exc


@dataclass
class DockerHost:
    name: str
    role: str
    address: str
    container: Container
    run_ctx: Run
    ready_s: float = 0.0  # from `docker create` to the first accepted login
    ready_at: float = 0.0  # time.monotonic() of that login

    def run(self, command: str, *, timeout: float, check: bool = True,
            env: Mapping[str, str] | None = None, stdin: bytes | None = None) -> CommandResult:
        if stdin is not None:
            spool = f"/tmp/repro-stdin-{time.monotonic_ns()}"
            self.put(stdin, spool, mode=0o600)
            command = f"( {command} ) < {spool}; rc=$?; rm -f {spool}; exit $rc"
        argv = ["timeout", "-k", "2", f"{timeout:.3f}", "sh", "-c", command]
        started = time.monotonic()
        try:
            result = self.container.exec_run(argv, environment=dict(env or {}), demux=True)
        except docker.errors.APIError as exc:
            raise HostCommandError(self.name, command, None, str(exc)) from exc
        out, err = result.output if result.output else (b"", b"")
        code: int | None = result.exit_code
        if code in TIMED_OUT and time.monotonic() - started >= timeout:
            code = None
        res = CommandResult(self.name, command, code, (out or b"").decode(errors="replace"),
                            (err or b"").decode(errors="replace"), time.monotonic() - started)
        if check and not res.ok:
            raise HostCommandError(self.name, command, code, res.stdout + res.stderr)
        return res

    def put(self, data: bytes | Path, remote: str, mode: int = 0o644) -> None:
        payload = data.read_bytes() if isinstance(data, Path) else data
        self.put_many(str(Path(remote).parent), {Path(remote).name: (payload, mode)})

    def put_many(self, directory: str, files: Mapping[str, tuple[bytes, int]]) -> None:
        """Several files into one directory in one API call (name -> (content, mode))."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name, (payload, mode) in files.items():
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(payload), mode, int(time.time())
                tar.addfile(info, io.BytesIO(payload))
        if not self.container.put_archive(directory, buf.getvalue()):
            raise HostCommandError(self.name, f"put {directory}", 1, "put_archive refused")

    def get(self, remote: str, local: Path) -> None:
        stream, _ = self.container.get_archive(remote)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.getmembers()[0]
            extracted = tar.extractfile(member)
            if extracted is None:
                raise HostCommandError(self.name, f"get {remote}", 1, "not a regular file")
            local.write_bytes(extracted.read())

    def url(self) -> str:
        return f"docker://{self.name}"

    def console(self) -> Path | None:
        return None  # containers have no console of their own; sshd's log is kept at teardown

    def ssh(self) -> fabric.Connection:
        return connection(self.address, self.run_ctx.key.private_path)


class DockerProvider:
    """`image`: what the containers run (default the base image; `docker:IMAGE` picks another,
    e.g. an image with its host init baked in, see repro.images). `cpus`: a role's own CPU
    quota in place of `cpu_cap` (the quota is what the incident is about)."""

    name = "docker"

    def __init__(self, image: str = BASE_IMAGE, cpus: Mapping[str, float] | None = None):
        self.image = image
        self.cpus = dict(cpus or {})

    @contextlib.contextmanager
    def hosts(self, run: Run, roles: Sequence[str]) -> Iterator[dict[str, Host]]:
        dc = client()
        try:
            image = dc.images.get(self.image)
        except docker.errors.ImageNotFound as exc:
            raise PrerequisiteError(f"the host image {self.image} is missing",
                                    "run setup/setup.sh image" if self.image == BASE_IMAGE
                                    else f"build or pull {self.image}") from exc
        labels = names.run_labels(run.run_id)
        containers: list[Container] = []
        started: list[DockerHost] = []
        mount = _can_mount_login(dc, self.image, image.labels or {})
        try:  # from before the network exists: a SIGTERM may land inside any API call
            network = dc.networks.create(
                run.name("net"), driver="bridge", labels=labels, check_duplicate=True,
                options={"com.docker.network.bridge.name": run.iface("br")})
            with ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL_STARTS,
                                                           len(roles)))) as pool:
                futures = [pool.submit(_start, dc, run, network, role, labels, containers,
                                       self.image, self.cpus.get(role, cpu_cap(len(roles))),
                                       mount)
                           for role in roles]
                started = [f.result() for f in futures]  # first failure raises here
            _LIVE.update(h.address for h in started)
            yield {h.role: h for h in started}
        finally:
            _LIVE.difference_update(h.address for h in started)
            _save_logs(run, containers)
            _remove_by_name(dc, [run.name(role) for role in roles], run.name("net"))
            for role in roles:
                shutil.rmtree(_login_dir(run, role), ignore_errors=True)


def _remove_by_name(dc: docker.DockerClient, container_names: list[str], network: str
                    ) -> None:
    """Remove the hosts and the network of one `hosts()` block by name, so that one whose
    create call was interrupted after the daemon made it (the handle never came back) goes
    too. The hosts go all at once (one at a time, 16 took 2.7 s here); the listing is sparse
    (no inspect call per container of every run on the machine, so
    another run's container removed meanwhile is no error that would leave this network)."""
    listed = dc.containers.list(all=True, sparse=True, filters={"label": names.LABEL_RUN})
    _each(_remove_container, [c for c in listed if _listed_name(c) in container_names])
    for n in dc.networks.list(names=[network]):
        if n.name == network:
            with contextlib.suppress(docker.errors.NotFound):
                n.remove()


def _listed_name(c: Container) -> str:
    """A container's name, also from a sparse listing (which has `Names`, not `Name`)."""
    return c.name or next(iter(c.attrs.get("Names") or []), "").lstrip("/")


def _each(action: Callable[[Any], None], items: Sequence[Any]) -> None:
    """`action` on every item at once (up to MAX_PARALLEL_STARTS); every item is tried,
    then the first failure raises."""
    if not items:
        return
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_STARTS, len(items))) as pool:
        futures = [pool.submit(action, item) for item in items]
    for f in futures:
        f.result()


OBSERVER_RESERVE_CPUS = 0.5  # what the run's hosts leave to the runner (the observer)
MIN_HOST_CPUS = 0.25


def cpu_cap(n_hosts: int) -> float:
    """CPUs one container may use so that all of a run's hosts leave the observer its share
    (under pytest-xdist, each worker's hosts get 1/N of it)."""
    from repro.harness.xdist import workers
    cpus = os.cpu_count() or 1
    return max(MIN_HOST_CPUS, (cpus - OBSERVER_RESERVE_CPUS) / workers() / max(1, n_hosts))


def _start(dc: docker.DockerClient, run: Run, network: Network, role: str,
           labels: dict[str, str], started: list[Container], image: str = BASE_IMAGE,
           cpus: float = 1.0, mount_login: bool = False) -> DockerHost:
    name = run.name(role)
    t0 = time.monotonic()
    volumes = {str(_write_login_dir(run, role)): {"bind": LOGIN_DIR, "mode": "rw"}} \
        if mount_login else None
    try:
        container = dc.containers.create(
            image, name=name, hostname=role, labels=labels, detach=True,
            network=network.name, cap_add=["NET_ADMIN", "NET_RAW"],
            sysctls={"net.netfilter.nf_conntrack_acct": "1"}, nano_cpus=int(cpus * 1e9),
            volumes=volumes)
    except docker.errors.APIError as exc:
        raise ProvisionError(f"{name}: could not create container: {exc}") from exc
    started.append(container)
    host = DockerHost(name=name, role=role, address="", container=container, run_ctx=run)
    if not mount_login:
        _install_login(host, run)
    container.start()
    container.reload()
    host.address = container.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
    try:
        wait_for_login(host.address, run.key.private_path, READY_TIMEOUT_S,
                       poll_s=LOGIN_POLL_S)
        host.ready_at = time.monotonic()
        host.ready_s = host.ready_at - t0
    except (ProvisionError, paramiko.SSHException) as exc:
        raise ProvisionError(f"{name}: sshd did not accept a login within "
                             f"{READY_TIMEOUT_S:.0f} s: {exc}") from exc
    return host


REMOVAL_WAIT_S = 30.0


def _remove_container(c: Container) -> None:
    """Force-remove; a removal already under way (a signal handler's, a cleanup's: Docker
    answers 409) is waited for until the container is gone, not raised."""
    try:
        c.remove(force=True)
    except docker.errors.NotFound:
        return
    except docker.errors.APIError as exc:
        if exc.status_code != 409:
            raise
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            c.wait(timeout=REMOVAL_WAIT_S, condition="removed")


def _login_files(run: Run) -> dict[str, tuple[bytes, int]]:
    """authorized_keys for the runner, and the same key for host-to-host ssh inside the run."""
    return {"authorized_keys": ((run.key.public_line + "\n").encode(), 0o600),
            "id_ed25519": (run.key.private_bytes, 0o600),
            "config": (SSH_CLIENT_CONFIG.encode(), 0o600)}


def _install_login(host: DockerHost, run: Run) -> None:
    host.put_many(LOGIN_DIR, _login_files(run))


def _login_dir(run: Run, role: str) -> Path:
    return run.scratch / f"login-{role}"


def _write_login_dir(run: Run, role: str) -> Path:
    """The host's /root/.ssh on the runner (root's, 0700 like the one it stands for: sshd's
    StrictModes checks it); the host may write to it (known_hosts, an ssh:// run's key)."""
    d = _login_dir(run, role)
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(mode=0o700, parents=True)
    for name, (payload, mode) in _login_files(run).items():
        fd = os.open(d / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
    return d


def _can_mount_login(dc: docker.DockerClient, image: str, image_labels: Mapping[str, str]
                     ) -> bool:
    """Bind-mount the login files (no copy) where the daemon shares this machine's file
    system (its unix socket) and the image's /root/.ssh holds nothing a mount would hide:
    the base image (setup/image-fixup.sh makes it empty) and images baked from it."""
    local = str(dc.api.base_url).startswith("http+docker://localhost")
    known_empty = image == BASE_IMAGE or image_labels.get("repro.image") in ("base", "baked")
    return local and known_empty


def _save_logs(run: Run, containers: list[Container]) -> None:
    outdir = run.reports / "hosts"

    def save(c: Container) -> None:
        with contextlib.suppress(Exception):
            outdir.mkdir(parents=True, exist_ok=True)
            (outdir / f"{c.name}.log").write_bytes(c.logs(tail=2000))

    _each(save, list(containers))


def reap(all_runs: bool, live_run_ids: set[str]) -> list[str]:
    """Remove containers, networks, volumes and images of dead runs (or of all runs)."""
    try:
        dc = docker.from_env(timeout=API_TIMEOUT_S)
        dc.ping()
    except docker.errors.DockerException:
        return []
    removed: list[str] = []
    flt = {"label": names.LABEL_RUN}

    def dead(obj: Any) -> bool:
        labels = obj.attrs.get("Labels") or obj.attrs.get("Config", {}).get("Labels") or {}
        return all_runs or labels.get(names.LABEL_RUN) not in live_run_ids

    # containers first: networks, volumes and images are in use until they are gone
    kinds: list[tuple[str, list[Any], Callable[[Any], None], Callable[[Any], str]]] = [
        # ignore_removed: a container another session removes while this lists (and inspects
        # each) is gone, not an error that crashes this run's start
        ("container", dc.containers.list(all=True, filters=flt, ignore_removed=True),
         lambda c: c.remove(force=True), lambda c: c.name),
        ("network", dc.networks.list(filters=flt), lambda n: n.remove(), lambda n: n.name),
        ("volume", dc.volumes.list(filters=flt), lambda v: v.remove(force=True),
         lambda v: v.name),
        ("image", dc.images.list(filters=flt), lambda i: dc.images.remove(i.id, force=True),
         lambda i: ",".join(i.tags) or i.short_id),
    ]
    for kind, objects, remove, label in kinds:
        for obj in objects:
            if dead(obj):
                with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                    remove(obj)
                    removed.append(f"{kind} {label(obj)}")
    return removed

