"""`repro run --again RUN`: a past run's incidents, re-run on exactly the inputs it recorded.

Model: each result of RUN carries its provenance (repro.harness.provenance): every key
of its incident's table as it ran, and a copy of every file it named. `configuration`
writes those back as a TOML configuration (the files: the copies in RUN's folder, not
whatever is at their old paths now), one table per incident, from its configuration
under test. `differences` compares what can have changed since: the harness's commit
and version, the runner's kernel, the host images, the QEMU mode, and each shipped
pre-fix fixture (the prefix direction runs today's, and says so when it is not the
one RUN ran). After the run, `verdicts` sets each result beside the one it repeats.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repro.harness.errors import ConfigError
from repro.harness.provenance import of_run, sha256
from repro.harness.report.record import RunReport, read_report

RUN_KEYS = ("commit", "harness_version", "runner_kernel", "docker_image", "qemu_image",
            "qemu_kernel", "qemu_mode")


@dataclass(frozen=True)
class Past:
    folder: Path
    report: RunReport

    @property
    def judged(self) -> list[Any]:
        return [r for r in self.report.results if not r.superseded and r.provenance]


def load(run: str, reports: Path) -> Past:
    folder = Path(run) if Path(run).is_dir() else reports / run
    path = folder / "results.json"
    if not path.is_file():
        raise ConfigError(f"--again: no run at {folder} (no results.json)")
    past = Past(folder.resolve(), read_report(path))
    if not past.judged:
        raise ConfigError(f"--again: run {past.report.run_id} recorded no inputs (a run "
                          "before provenance, or one without results)")
    return past


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a TOML basic string


def configuration(past: Past, path: Path) -> list[str]:
    """Write RUN's configurations under test to `path` (TOML); the incidents, in order."""
    tables: dict[str, dict[str, Any]] = {}
    for r in past.judged:
        if r.label.startswith("under test") and r.incident not in tables:
            values = dict(r.provenance.get("values", {}))
            history_dir = Path(r.artefacts.get("history", "")).parent
            for key, f in r.provenance.get("files", {}).items():
                values[key] = str(history_dir / f["copy"])
            tables[r.incident] = {k: v for k, v in values.items() if v is not None}
    if not tables:
        raise ConfigError(f"--again: run {past.report.run_id} has no configuration under "
                          "test with recorded inputs")
    lines = [f"# the inputs of run {past.report.run_id} (repro run --again)"]
    for name, values in tables.items():
        lines += ["", f"[{name}]"] + [f"{k} = {_toml_value(v)}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return list(tables)


def differences(past: Past) -> list[str]:
    """What is not as it was when RUN ran (one line each)."""
    then, now = past.report.provenance, of_run()
    out = [f"{k}: {then.get(k) or '-'} then, {now.get(k) or '-'} now" for k in RUN_KEYS
           if then.get(k) and now.get(k) and then.get(k) != now.get(k)]
    from repro.harness.config import FIXTURES
    from repro.harness.incidents import INCIDENTS
    for r in past.judged:
        spec = INCIDENTS.get(r.incident)
        if spec is None:
            out.append(f"{r.incident}: no such incident any more")
            continue
        if not r.label.startswith("prefix"):
            continue
        recorded = r.provenance.get("files", {}).get(spec.prefix.key, {}).get("sha256")
        current = FIXTURES / spec.prefix.fixture
        if recorded and current.is_file() and sha256(current) != recorded:
            out.append(f"{r.incident}: the shipped pre-fix fixture {spec.prefix.fixture} "
                       "changed since (the prefix direction runs today's)")
    return out


def verdicts(past: Past, now: RunReport) -> list[tuple[str, str, str, str]]:
    """(incident, label, verdict then, verdict now) for every result RUN judged."""
    current = {(r.incident, r.label.split(" (attempt")[0]): r.verdict.outcome.value
               for r in now.results if not r.superseded}
    return [(r.incident, r.label, r.verdict.outcome.value,
             current.get((r.incident, r.label.split(" (attempt")[0]), "not run"))
            for r in past.judged]
