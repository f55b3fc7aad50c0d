"""Table [container_awareness] of the configuration under test (see this folder's README).

`java_options` is the set of values under test: a JDK argument file (what `java @FILE`
reads: options separated by white space, `#` starts a comment), so the pre-fix and the fixed
JVM options ship as files like every other incident's configuration and a team points the
key at the options file it deploys with.

The offered load is sized from the runner (`rate = 0`, the default): `load` of what pools
sized from the CPUs the service's container can be scheduled on carry (load.sized_rate), so
that the verdict does not depend on the runner's size. `cpuset` limits those CPUs (Docker's
`cpuset_cpus`: "0", "0,1", "0-3"); a positive `rate` fixes the load instead (the verdict of
pools sized from the runner then depends on the runner).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from repro.container_awareness.load import sized_rate
from repro.harness.hosts.base import parse_provider

SERVICE_KINDS = (".java", ".jar")
MAX_RATE = 400.0  # requests per second one runner drives in open loop (asyncio, fresh connections)
MAX_IN_FLIGHT = 800  # rate x request_timeout_s: sockets open at once, under the 1024 files limit
CPUSET = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


def cpuset_cpus(cpuset: str) -> list[int]:
    """The CPUs a Docker cpuset string names ("0,2-3" -> [0, 2, 3]); ValueError if malformed."""
    if not CPUSET.match(cpuset):
        raise ValueError(f'cpuset must list CPUs like "0", "0,1" or "0-3", not {cpuset!r}')
    cpus: set[int] = set()
    for part in cpuset.split(","):
        low, _, high = part.partition("-")
        if high and int(high) < int(low):
            raise ValueError(f"cpuset range {part} runs backwards")
        cpus.update(range(int(low), int(high or low) + 1))
    return sorted(cpus)


@dataclass(frozen=True)
class ContainerAwarenessConfig:
    java_options: Path = Path("container_awareness/fixed.options")  # JDK argument file
    cpus: float = 1.0                     # the service container's CPU quota
    service: Path = Path("container_awareness/Service.java")  # Java source (one class) or jar
    rate: float = 0.0                     # offered requests/s, open loop; 0: sized (load)
    load: float = 0.7                     # share of what runner-sized pools carry (rate = 0)
    cpuset: str = ""                      # the runner's CPUs the service may use ("": all)
    min_throughput: float = 0.9           # fraction of the offered load that must be delivered
    p99_ms: float = 1000.0                # longest tolerated 99th percentile latency
    duration_s: float = 15.0              # how long the load is offered (and judged)
    warmup_s: float = 3.0                 # load offered first and not judged (JIT warm-up)
    downstream_ms: float = 150.0          # the blocking downstream work of each request
    request_timeout_s: float = 5.0        # a request not answered by then was not delivered
    provider: str = "docker"

    PROFILES: ClassVar[dict[str, dict[str, object]]] = {
        "full": {"duration_s": 60.0},
    }

    def validate(self) -> None:
        host_cpus = os.cpu_count() or 1
        if not 0.01 <= self.cpus <= host_cpus:
            raise ValueError(f"cpus must be between 0.01 and this machine's {host_cpus} CPUs")
        if self.service.suffix not in SERVICE_KINDS:
            raise ValueError("service must be a .java source file or a .jar")
        self._validate_load(host_cpus)
        if not 0 < self.min_throughput <= 1:
            raise ValueError("min_throughput is a fraction of the offered load: (0, 1]")
        if self.warmup_s < 0:
            raise ValueError("warmup_s must not be negative")
        if min(self.p99_ms, self.duration_s, self.downstream_ms, self.request_timeout_s) <= 0:
            raise ValueError("p99_ms, duration_s, downstream_ms and request_timeout_s must be "
                             "positive")
        if parse_provider(self.provider)[0] != "docker":
            raise ValueError('provider must be "docker" (or docker:IMAGE): the subject is a '
                             "container's CPU quota")

    def _validate_load(self, host_cpus: int) -> None:
        if not 0 < self.load <= 1:
            raise ValueError("load is a share of what pools sized from the runner carry: (0, 1]")
        runner = host_cpus
        if self.cpuset:
            named = cpuset_cpus(self.cpuset)
            if named[-1] >= host_cpus:
                raise ValueError(f"cpuset names CPU {named[-1]}; this machine has CPUs 0 to "
                                 f"{host_cpus - 1}")
            runner = len(named)
        if self.downstream_ms <= 0:
            return  # said below
        rate = self.rate or sized_rate(runner, self.load, self.downstream_ms)
        what = "rate" if self.rate else f"the load sized from {runner} CPUs ({rate:g}/s)"
        if not 0 < rate <= MAX_RATE:
            raise ValueError(f"{what} must be positive and at most {MAX_RATE:g} requests/s "
                             "(0 sizes it from the runner; a cpuset limits the runner)")
        if rate * self.request_timeout_s > MAX_IN_FLIGHT:
            raise ValueError(f"{what} x request_timeout_s must stay under {MAX_IN_FLIGHT} "
                             "(requests in flight at once, each an open socket on the runner)")
