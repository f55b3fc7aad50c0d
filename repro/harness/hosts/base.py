"""The Host protocol every backend implements, and the provider registry.

Model: a Host is a machine the harness can run commands on *from outside*:
`run` (root shell command with a timeout, never hangs), `put`/`get` (files),
`address` (reachable from the runner and from the run's other hosts), `url`
(backend URL, e.g. docker://repro-ab12-target), `console()` (a file with the
host's console output where the backend has one) and `ssh()` (a fabric
Connection through the run's own key: the channel a real user would take).

A provider turns a list of role names into hosts; `open_hosts` picks it by
name and guarantees removal (ExitStack), also when one host failed to start.
It is named `NAME[:IMAGE]` (PROVIDERS; IMAGES says which take an image and its
form); `parse_provider` checks such a name without importing any backend, and
`get_provider` makes the provider (which reads and checks the backend's own
settings, e.g. REPRO_EC2_*) without starting anything, so the configuration
layer refuses a bad one before any host starts.

Hosts the run created (docker, qemu, ec2) go away with the run, so what a fault
leaves on them does not matter; an existing machine (ssh) is *borrowed*: the
harness keeps its files in the host's own scratch dir, kills no process by
name, and logs in from one host to another with options the host gives
(`scratch_dir`, `is_borrowed`, `ssh_command` read those optional attributes,
with the defaults of the created hosts).
"""

from __future__ import annotations

import contextlib
import importlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from repro.harness.errors import ConfigError

if TYPE_CHECKING:
    import fabric

    from repro.harness.run import Run


@dataclass(frozen=True)
class CommandResult:
    host: str
    command: str
    exit_code: int | None  # None: timed out (the command was killed)
    stdout: str
    stderr: str
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@runtime_checkable
class Host(Protocol):
    name: str
    role: str
    address: str

    def run(self, command: str, *, timeout: float, check: bool = True,
            env: Mapping[str, str] | None = None, stdin: bytes | None = None) -> CommandResult:
        ...

    def put(self, data: bytes | Path, remote: str, mode: int = 0o644) -> None: ...

    def get(self, remote: str, local: Path) -> None: ...

    def url(self) -> str: ...

    def console(self) -> Path | None: ...

    def ssh(self) -> fabric.Connection: ...


class Provider(Protocol):
    """Starts hosts for a run; every host it yields is removed when the context exits."""

    name: str

    def hosts(self, run: Run, roles: Sequence[str]) -> contextlib.AbstractContextManager[
            dict[str, Host]]:
        ...


# provider name -> "module:attribute" (imported lazily: QEMU/EC2 pull in more)
PROVIDERS: dict[str, str] = {
    "docker": "repro.harness.hosts.docker:DockerProvider",
    "qemu": "repro.harness.hosts.qemu:QemuProvider",
    "ec2": "repro.harness.hosts.ec2:Ec2Provider",
    "ssh": "repro.harness.hosts.ssh:SshProvider",
}
# providers that take an image after the colon: how it is written, the pattern it matches
IMAGES: dict[str, tuple[str, str]] = {
    "docker": ("docker:IMAGE", r"[A-Za-z0-9][A-Za-z0-9._/:@-]*"),
    "ec2": ("ec2:ami-...", r"ami-[0-9a-f]{8,17}"),
}


def parse_provider(text: str) -> tuple[str, str]:
    """(name, image) of `NAME[:IMAGE]`, checked without importing any backend.

    Raises ValueError with one line: an unknown name, an image given to a provider
    that takes none, an empty or malformed image."""
    name, colon, image = text.partition(":")
    if name not in PROVIDERS:
        raise ValueError(f"unknown provider {name!r}; known: {', '.join(sorted(PROVIDERS))}")
    if not colon:
        return name, ""
    if name not in IMAGES:
        raise ValueError(f"provider {name!r} takes no image (got {text!r}); write {name!r}")
    form, pattern = IMAGES[name]
    if not re.fullmatch(pattern, image):
        raise ValueError(f"not an image for {name}: {image!r} (write {form})")
    return name, image


def get_provider(spec: str, key: str | None = "provider") -> Provider:
    """`spec` is a provider, optionally with the image its hosts boot: docker:IMAGE, ec2:AMI.
    Every malformed spec (and a malformed setting the backend reads, e.g. REPRO_EC2_*) is
    one ConfigError line naming `key` (where the spec came from). Making a provider starts
    nothing: hosts start in `hosts()`."""
    try:
        name, image = parse_provider(spec)
    except ValueError as exc:
        raise ConfigError(str(exc), key=key) from exc
    module_name, attr = PROVIDERS[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"provider {name!r} is not available: {exc}", key=key) from exc
    cls = getattr(module, attr)
    provider: Provider = cls(image=image) if image else cls()
    return provider


def scratch_dir(host: Host) -> str:
    """Where the harness keeps its files on `host`: /tmp on a host the run created (it goes
    with the host), the run's own directory on an existing machine (removed at teardown)."""
    return str(getattr(host, "scratch_dir", "/tmp"))


def is_borrowed(host: Host) -> bool:
    """An existing machine: nothing on it is the harness's but what the harness put there."""
    return bool(getattr(host, "borrowed", False))


def ssh_command(client: Host, target: Host, options: str = "") -> str:
    """The shell words with which `client` logs in to `target` with the run's key: plain
    `ssh ADDRESS` where the backend gave root an ssh config and the key (docker, qemu, ec2);
    an existing machine names its own config file (`ssh_client_options`) and a target its
    port and user (`ssh_destination`). `options` go before the destination."""
    words = ["ssh", options, str(getattr(client, "ssh_client_options", "")),
             str(getattr(target, "ssh_destination", target.address))]
    return " ".join(w for w in words if w)


@contextlib.contextmanager
def open_hosts(provider: str, run: Run, roles: Sequence[str]) -> Iterator[dict[str, Host]]:
    with get_provider(provider).hosts(run, roles) as hosts:
        yield hosts
