"""`repro merge`: the shards of one logical run, as one report.

Model: each input folder is a shard's report (results.json + shard.json, written by a
session with --repro-shard). The merge checks they belong to one run id and one N,
copies each shard's folder under `<out>/shards/<folder name>/` (the artefacts its
results name move with it, so the merged page links and redraws them), and writes
the merged results.json, summary.md, junit.xml and index.html: every shard's results
and reproductions, in shard order. A shard that is missing makes the banner red and
names it (`MergedReport.missing`); so does a shard that did not finish. It also writes
`durations.json` (seconds per incident, learnt from this run) for the next run's
`--repro-durations`.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from repro.harness import shards
from repro.harness.errors import ConfigError
from repro.harness.report import html, summary
from repro.harness.report.record import RunReport, Status, read_report, write_report_json
from repro.harness.report.results import IncidentResult


@dataclass
class ShardReport:
    folder: Path
    run_id: str
    index: int
    of: int
    original: str     # the folder's path where the shard wrote it (artefact paths start so)
    report: RunReport


@dataclass
class MergedReport(RunReport):
    missing: list[int] = dataclasses.field(default_factory=list)
    of: int = 0

    def status(self) -> Status:
        status = super().status()
        if not self.missing:
            return status
        gone = ", ".join(str(i) for i in self.missing)
        headline = status.headline.removeprefix("FAILED: ")
        return Status("bad", f"FAILED: shard(s) {gone} of {self.of} missing; {headline}")

    def to_dict(self) -> dict[str, object]:
        out = super().to_dict()
        out["shards"] = {"of": self.of, "missing": self.missing}
        return out


def read_shard(folder: Path) -> ShardReport:
    meta_path = folder / "shard.json"
    if not folder.exists():
        raise ConfigError(f"{folder} does not exist")
    if not meta_path.is_file() or not (folder / "results.json").is_file():
        raise ConfigError(f"{folder} is not a shard's report (no shard.json and results.json)")
    try:
        meta = json.loads(meta_path.read_text())
        return ShardReport(folder, str(meta["run_id"]), int(meta["shard"]), int(meta["of"]),
                           str(meta.get("folder", "")), read_report(folder / "results.json"))
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{folder}: unreadable shard report ({exc})") from exc


def merge(folders: list[Path], out: Path | None = None, reports: Path = Path("reports")
          ) -> tuple[MergedReport, Path]:
    """The merged report and the folder it was written to."""
    parts = sorted((read_shard(f) for f in folders), key=lambda s: s.index)
    if not parts:
        raise ConfigError("repro merge: give at least one shard folder")
    ids, ns = {p.run_id for p in parts}, {p.of for p in parts}
    if len(ids) > 1 or len(ns) > 1:
        raise ConfigError(f"shards of different runs: run ids {sorted(ids)}, N {sorted(ns)}")
    twice = sorted({p.index for p in parts if [q.index for q in parts].count(p.index) > 1})
    if twice:
        raise ConfigError(f"shard(s) {twice} given twice")
    run_id, of = parts[0].run_id, parts[0].of
    out = out or reports / run_id
    (out / "shards").mkdir(parents=True, exist_ok=True)
    merged = MergedReport(run_id, [], missing=sorted(set(range(1, of + 1)) -
                                                     {p.index for p in parts}), of=of)
    merged.exit_status, merged.finished = 0, True
    for p in parts:
        home = out / "shards" / p.folder.name
        if p.folder.resolve() != home.resolve():
            shutil.copytree(p.folder, home, dirs_exist_ok=True)
        merged.results += [_moved(r, p, home) for r in p.report.results]
        merged.tests += [dataclasses.replace(t, logs=[f"shards/{p.folder.name}/{x}"
                                                      for x in t.logs])
                         for t in p.report.tests]
        merged.other_failures += p.report.other_failures
        merged.finished = merged.finished and p.report.finished
        merged.abandoned = merged.abandoned or p.report.abandoned
        if p.report.exit_status not in (None, 0):
            merged.exit_status = p.report.exit_status
    write_report_json(merged, out / "results.json")
    summary.write_markdown(merged, out / "summary.md")
    summary.write_junit(merged, out / "junit.xml")
    html.write_html(merged, out.resolve())
    learnt = shards.learnt((t.nodeid, t.incident, t.duration_s) for t in merged.tests)
    (out / "durations.json").write_text(json.dumps(learnt, indent=2) + "\n")
    return merged, out


def _moved(r: IncidentResult, p: ShardReport, home: Path) -> IncidentResult:
    """The result with its artefacts' paths pointing into the merged folder's copy."""
    def move(path: str) -> str:
        for old in (p.original, str(p.folder.resolve())):
            if old and path.startswith(old.rstrip("/") + "/"):
                return str(home.resolve() / Path(path).relative_to(old))
        return path
    return dataclasses.replace(r, artefacts={k: move(v) for k, v in r.artefacts.items()})
