"""One exception tree for the harness.

Every error the harness raises on purpose is a ReproError. Bad input is a
ConfigError (a file, a key, an option, an environment variable: one line
naming where), raised before any host starts; the CLI turns it and
PrerequisiteError into one line and exit 2, pytest's start-up into a usage
error (exit 4). Everything else is a failed reproduction.
"""

from __future__ import annotations


class ReproError(Exception):
    """Base of every error the harness raises on purpose."""


class ConfigError(ReproError):
    """The configuration under test is malformed (file, table, key, type)."""

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None):
        self.path = path
        self.key = key
        where = ":".join(p for p in (path, key) if p)
        super().__init__(f"{where}: {message}" if where else message)


class PrerequisiteError(ReproError):
    """Something the machine lacks (Docker daemon, image, QEMU...); says how to fix it."""

    def __init__(self, what: str, fix: str):
        self.what = what
        self.fix = fix
        super().__init__(f"{what} (fix: {fix})")


class ProvisionError(ReproError):
    """A host could not be started or never became ready."""


class HostCommandError(ReproError):
    """A command on a host failed or timed out."""

    def __init__(self, host: str, command: str, exit_code: int | None, output: str):
        self.host = host
        self.command = command
        self.exit_code = exit_code
        self.output = output
        status = "timed out" if exit_code is None else f"exited {exit_code}"
        tail = output.strip().splitlines()[-3:]
        super().__init__(f"{host}: `{command}` {status}: {' | '.join(tail)}")


class FaultError(ReproError):
    """A fault could not be injected or healed."""


class InconclusiveError(ReproError):
    """The fault did not take effect as asked: the run proves nothing either way."""
