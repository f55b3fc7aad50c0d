"""Table [container_awareness] of the configuration under test (see this folder's README).

`java_options` is the set of values under test: a JDK argument file (what `java @FILE`
reads: options separated by white space, `#` starts a comment), so the pre-fix and the fixed
JVM options ship as files like every other incident's configuration and a team points the
key at the options file it deploys with.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from repro.harness.hosts.base import parse_provider

SERVICE_KINDS = (".java", ".jar")
MAX_RATE = 400.0  # requests per second one runner drives in open loop (asyncio, fresh connections)
MAX_IN_FLIGHT = 800  # rate x request_timeout_s: sockets open at once, under the 1024 files limit


@dataclass(frozen=True)
class ContainerAwarenessConfig:
    java_options: Path = Path("container_awareness/fixed.options")  # JDK argument file
    cpus: float = 1.0                     # the service container's CPU quota
    service: Path = Path("container_awareness/Service.java")  # Java source (one class) or jar
    rate: float = 40.0                    # offered requests per second, open loop
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
        if not 0 < self.rate <= MAX_RATE:
            raise ValueError(f"rate must be positive and at most {MAX_RATE:g} requests/s")
        if self.rate * self.request_timeout_s > MAX_IN_FLIGHT:
            raise ValueError(f"rate x request_timeout_s must stay under {MAX_IN_FLIGHT} "
                             "(requests in flight at once, each an open socket on the runner)")
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
