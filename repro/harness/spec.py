"""What an incident declares about itself, once, in its own folder.

Model: every incident package `repro/<name>/` (or a team's own package,
registered under the entry-point group `repro.incidents`) holds one
`IncidentSpec` in its `__init__.py` as `SPEC`. Everything that lists
incidents reads these specs and nothing else: the plugin's markers,
`repro list` and `repro doctor` (backends, and why not the others), the
report's key-figure columns and timeline panels, the gate (which incidents a
backend can judge, which figures it compares), the consistency test over
`fixtures/default.toml` / `fixtures/prefix.toml`, and the README's table.

A spec is data: importing an incident's package must stay cheap (its schema
module only; scenarios and checkers are imported by its tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST_BACKENDS = ("docker", "qemu", "ec2", "ssh")


@dataclass(frozen=True)
class Figure:
    """A headline figure: a key of the verdict's figures and its unit ("" for counts)."""

    key: str
    unit: str = ""


@dataclass(frozen=True)
class HostNeeds:
    """The hosts one run of the incident starts."""

    roles: tuple[str, ...] = ()
    own_kernel: bool = False   # needs hosts with their own kernel (QEMU guests, EC2)
    extra_disks: int = 0       # block devices besides the root disk


@dataclass(frozen=True)
class Prefix:
    """The shipped pre-fix configuration: which key of the table it replaces, and with what
    (a path under fixtures/, e.g. "mtu_wedge/prefix.sh")."""

    key: str
    fixture: str


@dataclass(frozen=True)
class IncidentSpec:
    name: str                  # the TOML table, the report's incident column
    marker: str                # `pytest repro/ -m MARKER`
    summary: str               # one line: what comes back
    postmortem: str            # where in ../shared/seeds/ the story is
    schema: type[Any]          # the frozen config dataclass of its table
    prefix: Prefix
    backends: tuple[str, ...]  # what it can run on (host backends or database kinds)
    not_on: dict[str, str] = field(default_factory=dict)  # backend -> why not
    hosts: HostNeeds = HostNeeds()
    headline: tuple[Figure, ...] = ()   # the report's key figures, the gate's comparison
    panels: tuple[str, ...] = ()        # timeline panels its report draws (report.timeline)
    package: str = ""                   # the module it was declared in (set by discovery)

    @property
    def headline_keys(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.headline)

    @property
    def folder(self) -> Path | None:
        """The incident's package folder (README, tests), when it is a real package."""
        import importlib

        if not self.package:
            return None
        module = importlib.import_module(self.package)
        return Path(module.__file__).parent if module.__file__ else None

    def why_not(self, backend: str) -> str:
        """"" when the incident can run on `backend`, else the reason."""
        if backend in self.backends:
            return ""
        return self.not_on.get(backend, f"{self.name} does not run on {backend}")

    def problems(self) -> list[str]:
        """What is missing or inconsistent in the spec itself (the consistency test)."""
        out = []
        fields = getattr(self.schema, "__dataclass_fields__", {})
        if self.prefix.key not in fields:
            out.append(f"prefix key {self.prefix.key!r} is not a key of {self.schema.__name__}")
        if not self.summary or not self.postmortem:
            out.append("summary and postmortem must say what the incident is")
        if not self.backends:
            out.append("no backend it can run on")
        if not self.headline:
            out.append("no headline figures")
        if not self.marker.isidentifier():
            out.append(f"marker {self.marker!r} is not a valid pytest marker")
        return out
