"""The single_branch run: the checkout step against many repository shapes.

Roles: `gitserver` (repro.harness.services.gitserver) and `build`. For each shape
(repro.single_branch.shapes) the server generates a small repository and
the configuration's `checkout` step runs on the build host with REPO_URL,
BRANCH (the branch the commit is on), COMMIT and WORKDIR; it must leave
WORKDIR at COMMIT. After the step, `git ls-remote` from the build host
checks that the server served that repository with the branch at its tip
(`served`): a step that failed against a server that did not answer proves
nothing about the step.

First the four canonical cases (master's tip, an older master commit, a
branch's tip, an older branch commit: phase `canonical`), then Hypothesis
searches shapes with a fixed seed and `examples` as its budget (phase
`search`); when one fails it shrinks it to the smallest failing repository.
Every run of the step is one `op` name=checkout in the history; the search's
outcome is one `op` name=minimal (the first failing shape it met, the shape it
shrank that to, how many times it asked). check.py judges the history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from random import Random

from hypothesis import HealthCheck, Phase, find, settings
from hypothesis.errors import NoSuchExample

from repro.harness.checks import Outcome, run_checker
from repro.harness.envelope import envelope
from repro.harness.history import History
from repro.harness.hosts import open_hosts
from repro.harness.hosts.base import Host
from repro.harness.report.results import IncidentResult
from repro.harness.run import Run
from repro.harness.services.gitserver import GitServer, Repo
from repro.harness.workloads.checkout import CheckoutStep, StepEnv, remove_agent
from repro.single_branch import check
from repro.single_branch.config import SingleBranchConfig
from repro.single_branch.shapes import CANONICAL, Shape, shapes

INCIDENT = "single_branch"
PROBE_TIMEOUT_S = 30.0


class Trial:
    """Runs the step for one shape; same shape, same answer (Hypothesis replays while shrinking).

    Calling it answers Hypothesis's question "does the property hold here?": False only
    when the step was seen failing on a repository the server served."""

    def __init__(self, run_ctx: Run, cfg: SingleBranchConfig, git: GitServer, build: Host,
                 history: History):
        self.run_ctx, self.cfg, self.git, self.build, self.history = \
            run_ctx, cfg, git, build, history
        self.phase = "canonical"
        self.seen: dict[Shape, bool] = {}

    def __call__(self, shape: Shape) -> bool:
        if shape not in self.seen:
            self.seen[shape] = self._try(shape, len(self.seen))
        return self.seen[shape]

    def _try(self, shape: Shape, n: int) -> bool:
        repo = self.git.create(shape.spec(f"shape{n}", seed=self.cfg.seed + n))
        commit = shape.commit(repo)
        url = repo.urls[self.cfg.transport]
        step = CheckoutStep(self.build, self.run_ctx, self.cfg.checkout,
                            StepEnv(url, shape.branch_name, commit), f"shape{n}")
        try:
            status = step.run(timeout=self.cfg.step_timeout_s)
            head = step.head()
            served = self._served(url, repo, shape.branch_name)
            self.history.append(
                "op", self.build.name, name="checkout", phase=self.phase, shape=shape.fields(),
                describe=shape.describe(), size=list(shape.size), branch=shape.branch_name,
                back=shape.back, commit=commit, exit_code=status.exit_code,
                elapsed_s=status.elapsed_s, head=head, served=served,
                output=step.output() if status.exit_code != 0 else "")
        finally:
            step.cleanup()
            self.git.remove(repo)
        return not served or (status.exit_code == 0 and head == commit)

    def _served(self, url: str, repo: Repo, branch: str) -> bool:
        """The server answers the build host with `branch` at its tip (git ls-remote)."""
        res = self.build.run(f"git ls-remote {url} refs/heads/{branch}",
                             timeout=PROBE_TIMEOUT_S, check=False)
        return res.ok and res.stdout.split()[:1] == [repo.tip(branch)]


def run(run_ctx: Run, cfg: SingleBranchConfig, label: str, expect: Outcome = Outcome.PASS
        ) -> IncidentResult:
    with envelope(run_ctx, INCIDENT, label, cfg.checkout, cfg.provider, expect) as env:
        with open_hosts(cfg.provider, run_ctx, ["gitserver", "build"]) as hosts, \
                GitServer(hosts["gitserver"], run_ctx) as git:
            build = hosts["build"]
            env.target = build.name
            trial = Trial(run_ctx, cfg, git, build, env.history)
            try:
                for shape in CANONICAL:
                    trial(shape)
                trial.phase = "search"
                record(env.history, build.name, search(trial, cfg.examples, cfg.seed))
            finally:
                remove_agent(build, run_ctx)
        return env.result(run_checker(check.check, env.history.events(), check.Params()))


@dataclass(frozen=True)
class Shrunk:
    first: Shape    # the first failing shape the search met
    minimal: Shape  # the one Hypothesis shrank it to
    calls: int      # times Hypothesis asked the predicate (replays included)


def search(holds: Callable[[Shape], bool], examples: int, seed: int) -> Shrunk | None:
    """Hypothesis: the first shape for which `holds` is False and the smallest it shrinks
    to, or None when `examples` shapes all hold. Same seed, same shapes in the same order:
    generation and shrinking use no randomness but the seed's, no example database."""
    budget = settings(max_examples=examples, database=None, deadline=None,
                      phases=(Phase.generate, Phase.shrink),
                      suppress_health_check=list(HealthCheck))
    first: list[Shape] = []
    calls = 0

    def fails(shape: Shape) -> bool:
        nonlocal calls
        calls += 1
        failed = not holds(shape)
        if failed and not first:
            first.append(shape)
        return failed

    try:
        minimal: Shape = find(shapes(), fails, settings=budget, random=Random(seed))
    except NoSuchExample:
        return None
    return Shrunk(first[0], minimal, calls)


def record(history: History, host: str, shrunk: Shrunk | None) -> None:
    if shrunk is None:
        return
    history.append("op", host, name="minimal", shape=shrunk.minimal.fields(),
                   describe=shrunk.minimal.describe(), size=list(shrunk.minimal.size),
                   first_shape=shrunk.first.fields(), first_describe=shrunk.first.describe(),
                   first_size=list(shrunk.first.size), calls=shrunk.calls)
