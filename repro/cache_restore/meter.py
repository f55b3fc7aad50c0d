"""Bytes the build host sends each target's sshd, counted in the build host's kernel.

Model: an nftables table `repro-<short>-meter` on the build host with one named counter per
target (output hook, destination address and port 22): whatever the restore step runs
(`cat | ssh`, `ssh < file`, rsync over ssh), the bytes on the wire to each target are
counted, and nothing is dropped or changed. One more counter, `resets`, counts the TCP
resets that come back from the cut target (when there is one): the cut as the build host
sees it. `Sampler` reads all counters with one `nft` call per round (every SAMPLE_EVERY_S
at most; a round is one `docker exec`, 0.1 s idle and seconds on a loaded runner) from a
thread: each round is one `series` event per target (panel "restore", the MB sent so far,
`bytes` exact) and, the first round that counts a reset, a `mark` name=cut on the cut
target.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from repro.cache_restore.cut import SSH_PORT
from repro.harness.history import History
from repro.harness.hosts.base import Host
from repro.harness.run import Run

CMD_TIMEOUT_S = 30.0
SAMPLE_EVERY_S = 0.5
PANEL = "restore"


def counter_name(i: int) -> str:
    return f"t{i:03d}"


@dataclass(frozen=True)
class Reading:
    sent: dict[str, int]   # bytes sent so far, per target name
    resets: int            # TCP resets from the cut target


@dataclass
class Meter:
    run: Run
    build: Host
    targets: Sequence[Host]
    cut_target: Host | None = None

    @property
    def table(self) -> str:
        return self.run.name("meter")

    def install(self) -> None:
        counters = "".join(f"  counter {counter_name(i)} {{}}\n" for i in range(len(self.targets)))
        rules = "".join(f"    ip daddr {t.address} tcp dport {SSH_PORT} counter name "
                        f"{counter_name(i)}\n" for i, t in enumerate(self.targets))
        resets = (f"  chain ingress {{\n    type filter hook input priority -5; policy accept;\n"
                  f"    ip saddr {self.cut_target.address} tcp sport {SSH_PORT} "
                  "tcp flags & rst != 0 counter name resets\n  }\n") if self.cut_target else ""
        text = (f"table inet {self.table} {{\n{counters}  counter resets {{}}\n"
                "  chain egress {\n    type filter hook output priority -5; policy accept;\n"
                f"{rules}  }}\n{resets}}}\n")
        self.build.run("nft -f -", stdin=text.encode(), timeout=CMD_TIMEOUT_S)

    def read(self) -> Reading | None:
        """The counters now; None when the build host did not answer."""
        res = self.build.run(f"nft -j list counters table inet {self.table}",
                             timeout=CMD_TIMEOUT_S, check=False)
        if not res.ok:
            return None
        counters = [item["counter"] for item in json.loads(res.stdout).get("nftables", [])
                    if "counter" in item]
        sent = {c["name"]: int(c["bytes"]) for c in counters}
        resets = sum(int(c["packets"]) for c in counters if c["name"] == "resets")
        return Reading({t.name: sent.get(counter_name(i), 0) for i, t in enumerate(self.targets)},
                       resets)


@dataclass
class Sampler:
    meter: Meter
    history: History
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    _cut_seen: bool = field(default=False, init=False)

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._loop, daemon=True, name="restore-meter")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2 * CMD_TIMEOUT_S + 5)
        self.sample()

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = self.history.now()
            self.sample()
            # sampling cadence, not synchronisation
            if self._stop.wait(max(0.0, SAMPLE_EVERY_S - (self.history.now() - started))):
                break

    def sample(self) -> None:
        reading = self.meter.read()
        t = self.history.now()
        if reading is None:
            return
        for name, n in reading.sent.items():
            self.history.append("series", name, t=t, panel=PANEL, name="MB sent",
                                value=round(n / 1e6, 3), unit="MB", bytes=n)
        cut = self.meter.cut_target
        if cut is not None and reading.resets and not self._cut_seen:
            self._cut_seen = True
            self.history.append("mark", cut.name, t=t, panel=PANEL, name="cut",
                                sent_bytes=reading.sent.get(cut.name, 0))
