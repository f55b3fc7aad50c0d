"""The Host protocol every backend implements, and the provider registry.

Model: a Host is a machine the harness can run commands on *from outside*:
`run` (root shell command with a timeout, never hangs), `put`/`get` (files),
`address` (reachable from the runner and from the run's other hosts), `url`
(backend URL, e.g. docker://repro-ab12-target), `console()` (a file with the
host's console output where the backend has one) and `ssh()` (a fabric
Connection through the run's own key: the channel a real user would take).

A provider turns a list of role names into hosts; `open_hosts` picks it by
name and guarantees removal (ExitStack), also when one host failed to start.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from repro.errors import ConfigError

if TYPE_CHECKING:
    import fabric

    from repro.run import Run


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
    "docker": "repro.hosts.docker:DockerProvider",
    "qemu": "repro.hosts.qemu:QemuProvider",
    "ec2": "repro.hosts.ec2:Ec2Provider",
}


def get_provider(name: str) -> Provider:
    """`name` is a provider, optionally with the image its hosts boot: docker:IMAGE, ec2:AMI."""
    name, _, image = name.partition(":")
    target = PROVIDERS.get(name)
    if target is None:
        known = ", ".join(sorted(PROVIDERS))
        raise ConfigError(f"unknown provider {name!r}; choose one of {known}", key="provider")
    module_name, attr = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"provider {name!r} is not available: {exc}", key="provider") from exc
    cls = getattr(module, attr)
    try:
        provider: Provider = cls(image=image) if image else cls()
    except TypeError as exc:
        raise ConfigError(f"provider {name!r} takes no image (got {image!r})",
                          key="provider") from exc
    return provider


@contextlib.contextmanager
def open_hosts(provider: str, run: Run, roles: Sequence[str]) -> Iterator[dict[str, Host]]:
    with get_provider(provider).hosts(run, roles) as hosts:
        yield hosts
