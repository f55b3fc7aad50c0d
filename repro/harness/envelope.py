"""The run envelope: what every reproduction does around its own steps.

Model: one `Envelope` per attempt of one configuration. It owns the result
folder (`reports/<run id>/<incident>/<slug of the label>/`, one slug rule for
every incident), the History (mirrored line by line to history.jsonl, or kept
in memory and written at the end for a workload that must not touch the disk
while it runs), the wall-clock timer, the artefacts (paths only) and the notes
a person should read (a figure that could not be drawn...). A scenario opens
it, does its steps, and returns `env.result(verdict)`:

    with envelope(run, "mtu_wedge", label, cfg.host_init, cfg.provider, expect) as env:
        ...  # provision, inject, observe into env.history
        return env.result(run_checker(check.check, env.history.events(), params))

The history is closed (written out) however the block ends. While the block runs, the
terminal shows its progress (repro.harness.progress). An incident run on one QEMU guest
opens it with `one_guest(env, run, role)`: booted and removed by the QEMU provider, named
the envelope's target, its serial console an artefact, its readiness (accelerator,
kernel, boot time, attempts) the history's first host event.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from repro.harness import progress
from repro.harness.checks import Outcome, Verdict
from repro.harness.history import History
from repro.harness.report.results import IncidentResult
from repro.harness.run import Run

if TYPE_CHECKING:
    from repro.harness.hosts.qemu import QemuHost, VmSpec


def slug(label: str) -> str:
    """The folder name of a label: lower case, runs of anything else as one dash."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "run"


@dataclass
class Envelope:
    incident: str
    label: str
    configuration: str
    provider: str
    expect: Outcome
    outdir: Path
    history: History
    target: str = ""
    artefacts: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @property
    def history_path(self) -> Path:
        return self.outdir / "history.jsonl"

    def result(self, verdict: Verdict) -> IncidentResult:
        artefacts = {"history": str(self.history_path)}
        artefacts |= {name: str(path) for name, path in self.artefacts.items()}
        return IncidentResult(
            incident=self.incident, label=self.label, configuration=self.configuration,
            provider=self.provider, verdict=verdict, expected=self.expect,
            duration_s=round(time.monotonic() - self.started, 1), artefacts=artefacts,
            target=self.target, notes=list(self.notes))


@contextmanager
def envelope(run: Run, incident: str, label: str, configuration: object, provider: str,
             expect: Outcome = Outcome.PASS, *, mirror: bool = True) -> Iterator[Envelope]:
    """`mirror=False`: the history stays in memory until the block ends (no disk write
    on the workload's path), then is written out all at once."""
    outdir = run.reports / incident / slug(label)
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / "history.jsonl"
    history = History(path if mirror else None)
    env = Envelope(incident, label, str(configuration), provider, expect, outdir, history)
    try:
        with progress.watching(env):
            yield env
    finally:
        history.close()
        if not mirror:
            with path.open("w", encoding="utf-8") as f:
                f.writelines(e.to_json() + "\n" for e in history.events())


@contextmanager
def one_guest(env: Envelope, run: Run, role: str, spec: VmSpec | None = None
              ) -> Iterator[QemuHost]:
    """One QEMU guest for the envelope's run (see the module's doc); removed however the
    block ends."""
    from repro.harness.hosts.qemu import QemuHost, QemuProvider

    with QemuProvider(spec).hosts(run, [role]) as hosts:
        host = hosts[role]
        assert isinstance(host, QemuHost)
        env.target = host.name
        if host.console():
            env.artefacts["console"] = Path(str(host.console()))
        env.history.append("host", host.name, event="ready", url=host.url(),
                           accel=host.accel.name, accel_reason=host.accel.reason,
                           kernel=host.vm.image.kernel_version, boot_s=round(host.boot_s, 2),
                           boot_attempts=host.attempts)
        yield host
