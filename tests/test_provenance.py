"""Provenance and replay, without hosts: what a result records, and --again's inputs.

A configuration's values, its files (hash and a copy) and seeds are recorded; --again
writes them back as a TOML configuration pointing at the copies, which validates as a
configuration; a changed pre-fix fixture is named as a difference; a run without inputs
and a missing run are one line each.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repro.harness import config as cfgfile
from repro.harness import incidents, replay
from repro.harness.checks import Outcome, Verdict
from repro.harness.errors import ConfigError
from repro.harness.provenance import of_config, sha256
from repro.harness.report.record import RunReport, write_report_json
from repro.harness.report.results import IncidentResult
from repro.single_branch.config import SingleBranchConfig


def _past(tmp_path: Path, prefix_sha: str = "") -> Path:
    run = tmp_path / "reports" / "R1"
    out = run / "single_branch" / "under-test"
    out.mkdir(parents=True)
    script = tmp_path / "mine.sh"
    script.write_text("#!/bin/sh\ngit clone \"$REPO_URL\" \"$WORKDIR\"\n")
    cfg = SingleBranchConfig(checkout=script, examples=3, seed=7)
    prov = of_config(cfg, out)
    results = [IncidentResult("single_branch", "under test", str(script), "docker",
                              Verdict(Outcome.PASS, (), {}), Outcome.PASS, 1.0,
                              {"history": str(out / "history.jsonl")}, provenance=prov)]
    if prefix_sha:
        results.append(IncidentResult(
            "single_branch", "prefix fixture", "prefix.sh", "docker",
            Verdict(Outcome.FAIL, (), {}), Outcome.FAIL, 1.0,
            {"history": str(out / "history.jsonl")},
            provenance={"values": {}, "files": {"checkout": {"sha256": prefix_sha}}}))
    write_report_json(RunReport("R1", results, provenance={"commit": "abc"}),
                      run / "results.json")
    return run


def test_a_result_records_values_files_and_seeds(tmp_path: Path) -> None:
    run = _past(tmp_path)
    [r] = replay.load("R1", tmp_path / "reports").judged
    files = r.provenance["files"]["checkout"]
    copy = run / "single_branch" / "under-test" / files["copy"]
    assert copy.read_text().startswith("#!/bin/sh") and files["sha256"] == sha256(copy)
    assert r.provenance["seeds"] == {"seed": 7} and r.provenance["values"]["examples"] == 3


def test_again_writes_a_valid_configuration_of_the_copies(tmp_path: Path) -> None:
    run = _past(tmp_path)
    toml = tmp_path / "again.toml"
    assert replay.configuration(replay.load(str(run), tmp_path), toml) == ["single_branch"]
    file = cfgfile.read_file(toml)
    incidents.validate_file(file, "ci")
    cfg = incidents.config_for("single_branch", file, "ci")
    assert cfg.examples == 3 and cfg.seed == 7 and "inputs" in str(cfg.checkout)


def test_a_changed_prefix_fixture_is_a_difference(tmp_path: Path) -> None:
    _past(tmp_path, prefix_sha="0" * 64)
    diff = replay.differences(replay.load("R1", tmp_path / "reports"))
    assert any("single_branch/prefix.sh changed since" in d for d in diff), diff
    assert any(d.startswith("commit: abc then") for d in diff), diff


def test_a_run_without_inputs_or_missing_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no run at"):
        replay.load("nope", tmp_path)
    bare = tmp_path / "R0"
    bare.mkdir()
    (bare / "results.json").write_text(json.dumps({"run_id": "R0", "results": []}))
    with pytest.raises(ConfigError, match="recorded no inputs"):
        replay.load("R0", tmp_path)
