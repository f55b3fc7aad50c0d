"""Host logs: each stored under the result it belongs to, and linked by exact file.

Model. The providers write a host's log when its hosts block ends, to
`reports/<run>/hosts/<host name>.<kind>.log` (Docker's container log, a QEMU or EC2
serial console, an ssh host's restore log). Host names are `repro-<short>-<role>`:
the same for every block of a run that asks for the same role (`-build` for two
incidents, `-target` for four results, `srv-0` for two incidents), so a log left
there is overwritten by the next block and cannot be told apart by name.

So the session *claims* what the providers leave, at points where it knows whose it
is, and moves it out of `hosts/` (a file left in `hosts/` is one nobody claimed yet):

- when a result is recorded (its scenario's hosts blocks have ended): the logs there
  now were written while it ran; they move to `<its folder>/hosts/` (its folder: the
  one its history lives in, `<incident>/<label>/`) and the result lists them, each as
  an artefact "host log <file>";
- results whose folders existed, unrecorded, when logs were claimed (one scenario
  call that ran both directions on one set of hosts, recorded by two tests) were
  running on those hosts too: they link the same files when they are recorded;
- when a test ends (its fixtures torn down): logs written after its results were
  recorded go to those results that got none, else (a reproduction that crashed before
  any result) to `hosts/<test>/`, listed on the test's record.

A folder left unrecorded when its test ends (a scenario that crashed) takes no later
logs. Every claim is a move within the run folder: nothing is copied; an artefact that
named a moved file (a QEMU guest's console) names it where it is now, and a file a
result already names is not listed twice. Only reproductions claim (the plugin's
choice): a test outside them may hold hosts across tests, their logs still written.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from repro.harness.report.results import IncidentResult

HOSTS = "hosts"
ARTEFACT_PREFIX = "host log "
NOT_RESULT_FOLDERS = frozenset({HOSTS, "figures", "shards"})


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._]+", "-", text).strip("-.") or "test"


@dataclass(frozen=True)
class Claim:
    files: tuple[Path, ...]        # where they are stored now
    running: frozenset[Path]       # result folders that existed, unrecorded, at the claim


@dataclass
class HostLogs:
    run_dir: Path
    claims: list[Claim] = field(default_factory=list)
    done: set[Path] = field(default_factory=set)  # folders recorded, or left by their test
    waiting: list[IncidentResult] = field(default_factory=list)  # this test's, no log yet
    moved: dict[str, str] = field(default_factory=dict)  # where a claimed file was -> is

    def unclaimed(self) -> list[Path]:
        """The files in hosts/ itself: written since the last claim."""
        folder = self.run_dir / HOSTS
        if not folder.is_dir():
            return []
        return sorted(f for f in folder.iterdir() if f.is_file() and not f.is_symlink())

    def running(self) -> frozenset[Path]:
        """Result folders (<incident>/<label>/) that exist and are not done."""
        found = set()
        with contextlib.suppress(OSError):
            for top in self.run_dir.iterdir():
                if top.is_dir() and top.name not in NOT_RESULT_FOLDERS:
                    found |= {d.resolve() for d in top.iterdir() if d.is_dir()}
        return frozenset(found - self.done)

    def claim_into(self, dest: Path) -> Claim | None:
        """Move the unclaimed logs into `dest` (None: there were none)."""
        files = self.unclaimed()
        if not files:
            return None
        dest.mkdir(parents=True, exist_ok=True)
        moved = []
        for f in files:
            with contextlib.suppress(OSError):  # gone meanwhile: nothing to claim
                moved.append(f.replace(dest / f.name))
                self.moved[str(f)] = self.moved[str(f.resolve())] = str(moved[-1])
        claim = Claim(tuple(moved), self.running())
        self.claims.append(claim)
        return claim

    def on_record(self, result: IncidentResult) -> list[Path]:
        """Claim for a result being recorded; list its logs in its artefacts; the files."""
        folder = result_folder(result)
        dest = folder / HOSTS if folder else self.run_dir / HOSTS / slug(
            f"{result.incident}-{result.label}")
        new = self.claim_into(dest)
        mine = [c for c in self.claims if folder is not None and folder in c.running]
        if new is not None and new not in mine:
            mine.append(new)
        if folder is not None:
            self.done.add(folder)
        files = [f for c in mine for f in c.files]
        result.artefacts = {k: self.moved.get(v, v) for k, v in result.artefacts.items()}
        link(result, files)
        if not files:
            self.waiting.append(result)
        return files

    def on_test_end(self, nodeid: str) -> list[str]:
        """Claim what the test's tear-down left: for its results that got no log, else under
        hosts/<test>/. Returns the files (relative to the run folder) for the test's record."""
        waiting, self.waiting = self.waiting, []
        first = next((f for r in waiting if (f := result_folder(r)) is not None), None)
        claim = self.claim_into(first / HOSTS if first else
                                self.run_dir / HOSTS / slug(nodeid))
        self.done |= self.running()  # a folder still unrecorded now never will be
        if claim is None:
            return []
        for r in waiting:
            r.artefacts = {k: self.moved.get(v, v) for k, v in r.artefacts.items()}
            link(r, list(claim.files))
        return [str(rel) for f in claim.files if (rel := relative(f, self.run_dir))]


def result_folder(result: IncidentResult) -> Path | None:
    history = result.artefacts.get("history")
    return Path(history).resolve().parent if history else None


def link(result: IncidentResult, files: list[Path]) -> None:
    """List the files among the result's artefacts (one it names already: not again)."""
    named = set(result.artefacts.values())
    for f in files:
        if str(f) not in named:
            result.artefacts[ARTEFACT_PREFIX + f.name] = str(f)


def relative(path: Path, root: Path) -> Path | None:
    try:
        return path.resolve().relative_to(root.resolve())
    except ValueError:
        return None
