"""The single_branch run: the checkout step against many repository shapes.

Roles: `gitserver` (repro.gitserver) and `build`. For each shape
(repro.single_branch.shapes) the server generates a small repository and
the configuration's `checkout` step runs on the build host with REPO_URL,
BRANCH (the branch the commit is on), COMMIT and WORKDIR; it must leave
WORKDIR at COMMIT. First the four canonical cases (master's tip, an older
master commit, a branch's tip, an older branch commit), then Hypothesis
searches shapes with a fixed seed and `examples` as its budget; when one
fails it shrinks it to the smallest failing repository, which the report
prints. Every run of the step is one `op` in the history; check.py judges it.
"""

from __future__ import annotations

import time
from random import Random

from hypothesis import HealthCheck, Phase, find, settings
from hypothesis.errors import NoSuchExample

from repro.checkout import CheckoutStep, StepEnv, remove_agent
from repro.checks import Outcome, run_checker
from repro.gitserver import GitServer
from repro.history import History
from repro.hosts import open_hosts
from repro.hosts.base import Host
from repro.report.results import IncidentResult
from repro.run import Run
from repro.single_branch import check
from repro.single_branch.config import SingleBranchConfig
from repro.single_branch.shapes import CANONICAL, Shape, shapes

INCIDENT = "single_branch"


class Trial:
    """Runs the step for one shape; same shape, same answer (Hypothesis replays while shrinking)."""

    def __init__(self, run_ctx: Run, cfg: SingleBranchConfig, git: GitServer, build: Host,
                 history: History):
        self.run_ctx, self.cfg, self.git, self.build, self.history = \
            run_ctx, cfg, git, build, history
        self.seen: dict[Shape, bool] = {}

    def __call__(self, shape: Shape) -> bool:
        if shape not in self.seen:
            self.seen[shape] = self._try(shape, len(self.seen))
        return self.seen[shape]

    def _try(self, shape: Shape, n: int) -> bool:
        repo = self.git.create(shape.spec(f"shape{n}", seed=self.cfg.seed + n))
        commit = shape.commit(repo)
        env = StepEnv(repo.urls[self.cfg.transport], shape.branch_name, commit)
        step = CheckoutStep(self.build, self.run_ctx, self.cfg.checkout, env, f"shape{n}")
        try:
            status = step.run(timeout=self.cfg.step_timeout_s)
            head = step.head()
            self.history.append(
                "op", self.build.name, name="checkout", shape=shape.fields(),
                describe=shape.describe(), size=list(shape.size), branch=shape.branch_name,
                back=shape.back, commit=commit, exit_code=status.exit_code,
                elapsed_s=status.elapsed_s, head=head,
                output=step.output() if status.exit_code != 0 else "")
        finally:
            step.cleanup()
            self.git.remove(repo)
        return status.exit_code == 0 and head == commit


def run(run_ctx: Run, cfg: SingleBranchConfig, label: str, expect: Outcome = Outcome.PASS
        ) -> IncidentResult:
    outdir = run_ctx.reports / INCIDENT / label.replace(" ", "-")
    outdir.mkdir(parents=True, exist_ok=True)
    history = History(outdir / "history.jsonl")
    started = time.monotonic()
    build_name = ""
    try:
        with open_hosts(cfg.provider, run_ctx, ["gitserver", "build"]) as hosts, \
                GitServer(hosts["gitserver"], run_ctx) as git:
            build = hosts["build"]
            build_name = build.name
            trial = Trial(run_ctx, cfg, git, build, history)
            try:
                for shape in CANONICAL:
                    trial(shape)
                search(trial, cfg, history)
            finally:
                remove_agent(build, run_ctx)
    finally:
        history.close()
    verdict = run_checker(check.check, history.events(), check.Params())
    return IncidentResult(
        incident=INCIDENT, label=label, configuration=str(cfg.checkout), provider=cfg.provider,
        verdict=verdict, expected=expect, duration_s=round(time.monotonic() - started, 1),
        figures=dict(verdict.figures), artefacts={"history": str(outdir / "history.jsonl")},
        target=build_name)


def search(trial: Trial, cfg: SingleBranchConfig, history: History) -> Shape | None:
    """Hypothesis: the smallest shape for which the step fails, or None within the budget."""
    budget = settings(max_examples=cfg.examples, database=None, deadline=None,
                      phases=(Phase.generate, Phase.shrink),
                      suppress_health_check=list(HealthCheck))
    try:
        minimal: Shape = find(shapes(), lambda s: not trial(s), settings=budget,
                              random=Random(cfg.seed))
    except NoSuchExample:
        return None
    history.append("op", trial.build.name, name="minimal", shape=minimal.fields(),
                   describe=minimal.describe())
    return minimal
