"""The container_awareness run: a JVM service under a CPU quota, offered load, judged.

Roles: `service` (the service under test, in a container with the configuration's own CPU
quota `cpus`: the provider's per-role quota, see repro.harness.hosts.docker) and
`downstream` (the stand-in database its pooled connections talk to; the provider's usual
cap). The runner is the load generator and the observer. Steps:

1. compile on the runner (javac): the service's source and the harness's Java (jvm.py);
2. start both hosts (the service's limited to `cpuset`, when given); record the service
   container's CPU quota as its cgroup says it, and the CPUs it can be scheduled on (nproc);
3. measure the fault: what a JVM with container support on (the update's default, the
   harness's control) sees there (java/Probe.java: available processors); when detection
   did not take (check.fault_took: the quota did not apply, or that JVM saw as many
   processors as the container can run on), stop: the run is inconclusive, nothing more
   to observe;
4. start the downstream (each query answered after `downstream_ms`), wait until it listens;
5. ask a JVM started with `java_options` in the service container what it sees, then
   start the service with the same options (env PORT, DOWNSTREAM) and wait until it
   answers HTTP; record the pool sizes it reports (its "repro-pools" line, when it prints
   one);
6. offer `rate` requests/s (0: sized from the container's CPUs, load.sized_rate) for
   `duration_s` in open loop (load.py), sampling the JVM's live threads from
   /proc/PID/status every second;
7. judge the history (check.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from repro.container_awareness import check, jvm
from repro.container_awareness.config import ContainerAwarenessConfig
from repro.container_awareness.load import Load, drive
from repro.harness.checks import Outcome, Verdict, run_checker
from repro.harness.envelope import envelope
from repro.harness.history import History, of_kind
from repro.harness.hosts.base import Host, parse_provider
from repro.harness.hosts.docker import BASE_IMAGE, DockerHost, DockerProvider
from repro.harness.procs import eventually
from repro.harness.report.results import IncidentResult
from repro.harness.run import Run

INCIDENT = "container_awareness"
PORT = 8080
DOWNSTREAM_PORT = 9000
# A container's CPU weight against everything else on the runner (1024: one ordinary process,
# however many threads it runs). With other work on this shared 2-core machine (load
# average 10-20 measured), a 1024-share container got a fraction of its 1-CPU quota and the
# fixed service timed out; in production a quota on a large machine is what it gets. The
# quota stays the cap (what the JVM detects); the weight only makes it attainable here.
CPU_SHARES = 8192
READY_TIMEOUT_S = 60.0   # a JVM under a 1-CPU quota on a loaded runner: 1-5 s measured
SAMPLE_EVERY_S = 1.0
OPTIONS = "/tmp/repro-java.options"
POOLS_LINE = "repro-pools "
DETECTING = "-XX:+UseContainerSupport"  # the update's default: the fault, as a control JVM
SHARES = "cat /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null || cat /sys/fs/cgroup/cpu.weight"
# the cgroup's CPU quota as "QUOTA PERIOD" (v2: cpu.max; v1: cfs_quota_us / cfs_period_us)
QUOTA = ("cat /sys/fs/cgroup/cpu.max 2>/dev/null || echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us)"
         " $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)")


def run(run_ctx: Run, cfg: ContainerAwarenessConfig, label: str,
        expect: Outcome = Outcome.PASS) -> IncidentResult:
    with envelope(run_ctx, INCIDENT, label, cfg.java_options, cfg.provider, expect) as env:
        env.history.append("phase", "", name="javac")
        try:
            harness = jvm.harness_program(run_ctx.scratch)
            service = jvm.service_program(cfg.service, run_ctx.scratch)
        except jvm.CompileError as exc:
            return env.result(Verdict(Outcome.FAIL, (
                f"the service {cfg.service.name} does not compile: {exc}",), {}))
        with _hosts(cfg, run_ctx) as hosts:
            svc, down = hosts["service"], hosts["downstream"]
            env.target = svc.name
            params = _params(svc.name, cfg)
            for host in (svc, down):
                env.history.append("host", host.name, event="ready", url=host.url())
            _observe_quota(svc, env.history)
            _observe_runner(svc, env.history)
            harness.install(svc)
            _probe_jvm(svc, harness, DETECTING, "detection", env.history)
            took = check.fault_took(check.observe(env.history.events(), params), params)
            if took.inconclusive:
                env.history.append("phase", svc.name, name="detection did not take: stop")
            elif not _serve(svc, down, (harness, service), cfg, env.history):
                return env.result(Verdict(Outcome.INCONCLUSIVE, (
                    f"the harness's downstream on {down.name} never listened",), {}))
        return env.result(run_checker(check.check, env.history.events(), params))


def _params(host: str, cfg: ContainerAwarenessConfig) -> check.Params:
    return check.Params(host=host, rate=cfg.rate, duration_s=cfg.duration_s,
                        min_throughput=cfg.min_throughput, p99_ms=cfg.p99_ms,
                        timeout_s=cfg.request_timeout_s, cpus=cfg.cpus, load=cfg.load,
                        downstream_ms=cfg.downstream_ms)


def _serve(svc: Host, down: Host, programs: tuple[jvm.Program, jvm.Program],
           cfg: ContainerAwarenessConfig, history: History) -> bool:
    """Downstream, the options under test's JVM, the service, the load (steps 4-6);
    False when the harness's downstream never listened."""
    harness, service = programs
    harness.install(down)
    service.install(svc)
    svc.put(cfg.java_options.read_bytes(), OPTIONS)
    history.append("phase", svc.name, name="starting the JVMs")
    if not _start_downstream(down, harness, cfg, history):
        return False
    _probe_jvm(svc, harness, f"@{OPTIONS}", "jvm", history)
    pid = _start_service(svc, down, service, history)
    if pid:
        rate = check.observe(history.events(), _params(svc.name, cfg)).rate
        _offer_load(svc, pid, cfg, rate, history)
    return True


@contextlib.contextmanager
def _hosts(cfg: ContainerAwarenessConfig, run_ctx: Run) -> Iterator[dict[str, Host]]:
    """The service host with the configuration's CPU quota (and cpuset), the downstream
    with the cap; both with CPU_SHARES, so that the quota is what they get on a busy
    runner."""
    image = parse_provider(cfg.provider)[1] or BASE_IMAGE
    with DockerProvider(image, cpus={"service": cfg.cpus}).hosts(
            run_ctx, ["service", "downstream"]) as hosts:
        for host in hosts.values():
            assert isinstance(host, DockerHost)
            host.container.update(cpu_shares=CPU_SHARES)
        if cfg.cpuset:
            svc = hosts["service"]
            assert isinstance(svc, DockerHost)
            svc.container.update(cpuset_cpus=cfg.cpuset)
        yield hosts


def _observe_quota(svc: Host, history: History) -> None:
    words = svc.run(QUOTA, timeout=jvm.CMD_TIMEOUT_S, check=False).stdout.split()
    quota = None
    if len(words) == 2 and words[1].isdigit() and words[0].lstrip("-").isdigit() \
            and int(words[0]) > 0:
        quota = round(int(words[0]) / int(words[1]), 3)
    shares = svc.run(SHARES, timeout=jvm.CMD_TIMEOUT_S, check=False).stdout.strip()
    history.append("observe", svc.name, what="cpu_quota", cpus=quota,
                   shares=int(shares) if shares.isdigit() else None)


def _start_downstream(down: Host, harness: jvm.Program, cfg: ContainerAwarenessConfig,
                      history: History) -> bool:
    jvm.start(down, "", harness.launch(str(DOWNSTREAM_PORT), f"{cfg.downstream_ms:.0f}"),
              "downstream")
    ok = eventually(lambda: _connects(down.address, DOWNSTREAM_PORT), timeout=READY_TIMEOUT_S)
    history.append("host", down.name, event="started" if ok else "downstream_failed",
                   what="downstream", delay_ms=cfg.downstream_ms,
                   output=jvm.log(down, "downstream")[-300:])
    return ok


def _observe_runner(svc: Host, history: History) -> None:
    """The CPUs the service's container can be scheduled on (nproc: its affinity, so its
    cpuset), beside the machine's: what a JVM without container support counts."""
    out = svc.run("nproc", timeout=jvm.CMD_TIMEOUT_S, check=False).stdout.strip()
    history.append("observe", svc.name, what="runner", cpus=_int(out),
                   machine_cpus=os.cpu_count())


def _probe_jvm(svc: Host, harness: jvm.Program, options: str, what: str,
               history: History) -> None:
    """What a JVM started with `options` sees in the service's container (`what`: "jvm"
    for the options under test, "detection" for the harness's control)."""
    out = jvm.run_once(svc, options, harness.launch(main="Probe"))
    seen = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    history.append("observe", svc.name, what=what, options=options,
                   available_processors=_int(seen.get("available_processors")),
                   max_heap_mb=_int(seen.get("max_heap_mb")),
                   common_pool_parallelism=_int(seen.get("common_pool_parallelism")),
                   output=out[-300:] if "available_processors" not in seen else "")


def _start_service(svc: Host, down: Host, service: jvm.Program, history: History) -> int:
    """The service's pid once it answers HTTP; 0 when it never did (recorded why)."""
    pid = jvm.start(svc, f"@{OPTIONS}", service.launch(), "service",
                    env={"PORT": str(PORT), "DOWNSTREAM": f"{down.address}:{DOWNSTREAM_PORT}"})
    ready = eventually(lambda: _answers_http(svc.address) or not jvm.alive(svc, pid),
                       timeout=READY_TIMEOUT_S) and jvm.alive(svc, pid)
    log = jvm.log(svc, "service")
    if not ready:
        history.append("host", svc.name, event="service_failed", pid=pid, output=log[-600:],
                       waited_s=READY_TIMEOUT_S, exited=not jvm.alive(svc, pid))
        return 0
    history.append("host", svc.name, event="started", what="service", pid=pid)
    pools = next((line[len(POOLS_LINE):] for line in log.splitlines()
                  if line.startswith(POOLS_LINE)), "")
    with contextlib.suppress(ValueError):
        history.append("observe", svc.name, what="pools", **json.loads(pools))
    return pid


@dataclass
class _ThreadSampler:
    """Live threads of the JVM (/proc/PID/status), once a second, as a series."""

    host: Host
    pid: int
    history: History
    pools: dict[str, int]
    stop: threading.Event

    def loop(self) -> None:
        while True:
            self.sample()
            if self.stop.wait(SAMPLE_EVERY_S):
                break
        self.sample()

    def sample(self) -> None:
        res = self.host.run(f"awk '/^Threads:/ {{print $2}}' /proc/{self.pid}/status",
                            timeout=jvm.CMD_TIMEOUT_S, check=False)
        t = self.history.now()
        if res.stdout.strip().isdigit():
            self.history.append("series", self.host.name, t=t, panel="pools",
                                name="live threads", value=int(res.stdout), unit="threads")
        for name, size in self.pools.items():
            self.history.append("series", self.host.name, t=t, panel="pools", name=name,
                                value=size, unit="threads")


def _offer_load(svc: Host, pid: int, cfg: ContainerAwarenessConfig, rate: float,
                history: History) -> None:
    reported = of_kind(history.events(), "observe")
    pools = next(({f"{k} (pool)": int(e.get(k)) for k in ("workers", "connections")
                   if e.get(k) is not None} for e in reported if e.get("what") == "pools"), {})
    history.append("phase", svc.name, name="offering load", rate=rate)
    sampler = _ThreadSampler(svc, pid, history, pools, threading.Event())
    thread = threading.Thread(target=sampler.loop, daemon=True, name="jvm-threads")
    thread.start()
    try:
        drive(Load(svc.name, svc.address, PORT, rate, cfg.duration_s,
                   cfg.request_timeout_s, cfg.warmup_s), history)
    finally:
        sampler.stop.set()
        thread.join(timeout=jvm.CMD_TIMEOUT_S + 5)
    _rates(svc.name, history)
    history.append("observe", svc.name, what="service_log",
                   output=jvm.log(svc, "service")[-600:])


def _rates(host: str, history: History) -> None:
    """Offered and delivered requests per second (by the second they were sent in)."""
    ops = [e for e in of_kind(history.events(), "op") if e.get("name") == "request"]
    if not ops:
        return
    first = min(float(e.get("sent_t")) for e in ops)
    buckets: dict[int, list[bool]] = {}
    for e in ops:
        buckets.setdefault(int(float(e.get("sent_t")) - first), []).append(bool(e.get("ok")))
    for second, oks in sorted(buckets.items()):
        t = first + second  # the value holds over the second that starts here
        history.append("series", host, t=t, panel="requests", name="offered",
                       value=len(oks), unit="requests/s")
        history.append("series", host, t=t, panel="requests", name="delivered",
                       value=sum(oks), unit="requests/s")


def _connects(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1.0):
            return True
    except OSError:
        return False


def _answers_http(address: str) -> bool:
    """Any HTTP status line for GET / (the service listens and parses requests)."""
    try:
        with socket.create_connection((address, PORT), timeout=2.0) as s:
            s.settimeout(2.0)
            s.sendall(b"GET / HTTP/1.0\r\nConnection: close\r\n\r\n")
            return s.recv(16).startswith(b"HTTP/")
    except OSError:
        return False


def _int(text: str | None) -> int | None:
    return int(text) if text and text.strip().isdigit() else None
