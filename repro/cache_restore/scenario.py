"""The cache_restore run: a build cache restored into N containers over ssh, verified.

Roles: `build` (the build host: it holds the tarball and runs the restore step) and
`t01`..`tNN` (the containers; `ssh <name>` from the build host logs in with the run's key,
names resolved by Docker's DNS). The runner is the observer. Steps:

1. make the cache on the runner (cache.py: a .tar.gz and the manifest of every file's hash);
2. start the hosts; run the configuration's `host_init` on every one (as in mtu_wedge:
   repro.harness.workloads.hostinit); copy the tarball to the build host, make DEST on
   each target;
3. arm the meter (meter.py: bytes the build host sends each target) and, with `cut` =
   "half", the cut on the middle target (cut.py: its connection reset once half the
   tarball has gone to it; kept until the step ends);
4. heartbeat the build host (repro.harness.probes.heartbeat) until it has a baseline, then
   run the restore step on it with CACHE, TARGETS, DEST (killed past `budget_s` + grace),
   sampling the meter; heal the cut, keep observing a moment;
5. hash every target's DEST tree (docker exec: the control channel, not ssh) into the
   history and judge it (check.py).
"""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

from repro.cache_restore import cache, check, meter
from repro.cache_restore.config import CacheRestoreConfig
from repro.cache_restore.cut import CutMidStream
from repro.harness.checks import Outcome, Verdict, run_checker
from repro.harness.envelope import envelope
from repro.harness.errors import HostCommandError
from repro.harness.faults.base import injected, record_measure
from repro.harness.faults.mtu import read_mtu
from repro.harness.history import History
from repro.harness.hosts.base import Host, parse_provider
from repro.harness.hosts.docker import BASE_IMAGE, DockerProvider, cpu_cap
from repro.harness.probes.heartbeat import Heartbeat, wait_baseline
from repro.harness.report.results import IncidentResult
from repro.harness.run import Run
from repro.harness.workloads.hostinit import apply_host_init

INCIDENT = "cache_restore"
# CPU quota of each host: the provider's cap for a run of BUSY_HOSTS hosts. Its cap for 13
# (cpu_cap shares 1.5 CPUs among a run's hosts, at least 0.25 each) presumes all 13 busy at
# once; a restore keeps two busy (serial: the build host and one target) or mostly the
# build host (parallel: it encrypts every stream). At 0.25 CPU one ssh login took 1 s and
# 4 MB into `tar -xzf -` 2 s more: the serial restore of 12 took 27-35 s; at 0.5, 15-22 s.
# When more are busy, the heartbeat (nice -10) and the observer-starved rule cover it.
BUSY_HOSTS = 3
CACHE_PATH = "/tmp/repro-cache.tar.gz"
DEST = "/tmp/repro-restore"
STEP = "/tmp/repro-restore-step"
GRACE_S = 10.0        # past the budget, the step is killed
SETTLE_S = 1.0        # observation after the step, not synchronisation
CMD_TIMEOUT_S = 60.0
OUTPUT_KEEP = 8000    # characters of the step's output kept (its end)
# sha256 of every file under DEST, as "HASH  ./PATH" lines
HASH_TREE = f"cd {DEST} 2>/dev/null && find . -type f -exec sha256sum {{}} +"


def roles(n: int) -> list[str]:
    return ["build", *(f"t{i:02d}" for i in range(1, n + 1))]


def run(run_ctx: Run, cfg: CacheRestoreConfig, label: str, expect: Outcome = Outcome.PASS
        ) -> IncidentResult:
    with envelope(run_ctx, INCIDENT, label, cfg.restore, cfg.provider, expect) as env:
        made = cache.make(run_ctx.scratch, cfg.cache_mb, cfg.files)
        env.history.append("cache", "", size=made.size, files=made.manifest)
        with _hosts(cfg, run_ctx) as hosts:
            build = hosts["build"]
            targets = [hosts[r] for r in roles(cfg.targets)[1:]]
            env.target = build.name
            for host in hosts.values():
                env.history.append("host", host.name, event="ready", url=host.url())
            failure = apply_host_init(hosts.values(), cfg.host_init, env.history)
            if failure:
                return env.result(Verdict(Outcome.FAIL, (failure,), {}))
            for host in (build, targets[0]):
                with contextlib.suppress(HostCommandError, ValueError):
                    env.history.append("observe", host.name, mtu=read_mtu(host))
            env.history.append("phase", build.name, name="staging the cache")
            _stage(build, targets, made)
            verdict = _restore_and_observe(run_ctx, cfg, build, targets, made, env.history)
            if verdict is None:
                env.history.append("phase", build.name, name="verifying every tree")
                _verify(targets, env.history)
                params = check.Params(build=build.name, targets=tuple(t.name for t in targets),
                                      budget_s=cfg.budget_s, max_gap_s=cfg.max_gap_s)
                verdict = run_checker(check.check, env.history.events(), params)
        return env.result(verdict)


def _hosts(cfg: CacheRestoreConfig, run_ctx: Run
           ) -> contextlib.AbstractContextManager[dict[str, Host]]:
    """The build host and the targets, each with the quota of a run of BUSY_HOSTS (0.5 CPU
    here, less under pytest-xdist)."""
    image = parse_provider(cfg.provider)[1] or BASE_IMAGE
    names = roles(cfg.targets)
    return DockerProvider(image, cpus=dict.fromkeys(names, cpu_cap(BUSY_HOSTS))).hosts(
        run_ctx, names)


def _stage(build: Host, targets: list[Host], made: cache.Cache) -> None:
    build.put(made.path, CACHE_PATH, 0o644)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda t: t.run(f"rm -rf {DEST} && mkdir -p {DEST}",
                                      timeout=CMD_TIMEOUT_S), targets))


def _restore_and_observe(run_ctx: Run, cfg: CacheRestoreConfig, build: Host,
                         targets: list[Host], made: cache.Cache, history: History
                         ) -> Verdict | None:
    """Run the step under observation; a Verdict only when the run cannot be judged."""
    cut = (CutMidStream(run_ctx, targets[len(targets) // 2], build.address, made.size // 2)
           if cfg.cut == "half" else None)
    meter_ = meter.Meter(run_ctx, build, targets, cut.target if cut else None)
    meter_.install()
    heartbeat = Heartbeat(history, build.name, build.address, run_ctx.key.private_path,
                          interval_s=cfg.heartbeat_interval_s)
    build.put(cfg.restore.read_bytes(), STEP, 0o755)
    with heartbeat, ExitStack() as stack:
        if not wait_baseline(history, build.name):
            return Verdict(Outcome.INCONCLUSIVE,
                           (f"no healthy heartbeat from {build.name} before the restore",), {})
        if cut is not None:
            stack.enter_context(injected(cut, history))
        with meter.Sampler(meter_, history):
            _run_step(build, targets, cfg, history)
        if cut is not None:
            state = cut.measure()
            record_measure(history, cut.name, cut.target_name, fired=state.fired,
                           seen_bytes=state.seen_bytes, resets=state.resets,
                           after_bytes=cut.after_bytes, size=made.size)
            stack.close()  # heal: the target answers the build host again
        time.sleep(SETTLE_S)  # observation window after the step, not synchronisation
    return None


def _run_step(build: Host, targets: list[Host], cfg: CacheRestoreConfig, history: History
              ) -> None:
    env = {"CACHE": CACHE_PATH, "TARGETS": " ".join(t.name for t in targets), "DEST": DEST}
    history.append("phase", build.name, name="restore step")
    history.append("op", build.name, name="restore_start", env=env)
    started = time.monotonic()
    res = build.run(STEP, timeout=cfg.budget_s + GRACE_S, env=env, check=False)
    history.append("op", build.name, name="restore", exit_code=res.exit_code,
                   elapsed_s=round(time.monotonic() - started, 3),
                   output=(res.stdout + res.stderr)[-OUTPUT_KEEP:])


def _verify(targets: list[Host], history: History) -> None:
    def tree(t: Host) -> tuple[Host, dict[str, str], bool]:
        res = t.run(HASH_TREE, timeout=CMD_TIMEOUT_S, check=False)
        files = {}
        for line in res.stdout.splitlines():
            digest, _, path = line.partition("  ")
            files[path.removeprefix("./")] = digest
        return t, files, res.exit_code is not None
    with ThreadPoolExecutor(max_workers=8) as pool:
        for t, files, answered in pool.map(tree, targets):
            history.append("tree", t.name, dest=DEST, files=files, answered=answered)
