"""disk_fill: N concurrent writers fill a directory to a target fraction or ENOSPC.

Model (the postmortem's `dummy-disk-filler` builds, run many times at once):
`inject()` starts `fillers` background writers on the host, each appending
8 MiB files (direct I/O, so the writes reach the block device as they go)
to `<directory>/repro-fill-<i>-<n>` until the filesystem's used fraction
((blocks - free) / blocks, what `df` shows) reaches `fill_to`, or the write
fails (ENOSPC is a normal end; EIO and friends are recorded as errors).
`wait()` polls progress on the host once a second (each poll a `fill` event in
the history) until every writer ended, an observer says the host died
(`host_dead`), the polls went unanswered (at least LOST_POLLS failed polls in a
row spanning `lost_after_s`), or the deadline passed, and returns the
Measurement: the fraction actually reached, bytes written, how each writer
ended, how many polls in a row failed. A fill short of its target without a
reason on the host's side is a shortfall: the run is inconclusive.
`heal()` kills the writers and deletes their files; it is idempotent and
tolerates a host that rebooted (the files may be on a volume that is gone).

`host_lost` is the fill's own view: its ssh polls stopped getting answers. It
is not evidence that the host died: a TCG guest busy with 8 direct-I/O writers
can take longer than a poll's timeout (CMD_TIMEOUT_S) to run an ssh command,
so two slow polls looked like a dead host. A checker counts a lost host only
with independent evidence (a reboot, a panic on the console, heartbeat
misses); without it a lost fill that fell short is a shortfall like any other.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from repro.harness.faults.base import Applied
from repro.harness.history import History
from repro.harness.hosts.base import Host

CHUNK_MB = 8
POLL_S = 1.0
CMD_TIMEOUT_S = 15.0
LOST_POLLS = 3  # failed polls in a row before the fill stops waiting for the host
STATE = "/run/repro-fill"

WRITER = r"""
i=$1; dir=$2; target=$3; n=0
while :; do
    set -- $(stat -f -c '%b %f' "$dir") || exit 4
    [ $(( ($1 - $2) * 1000 / $1 )) -ge "$target" ] && { echo target > "$STATE/end.$i"; exit 0; }
    if ! err=$(dd if=/dev/zero of="$dir/repro-fill-$i-$n" bs=1M count=$CHUNK oflag=direct \
               status=none 2>&1); then
        case "$err" in *"No space left"*) echo enospc;; *) echo "error: $err";; esac \
            > "$STATE/end.$i"
        exit 3
    fi
    n=$((n + 1))
done
"""

PROGRESS = r"""set -- $(stat -f -c '%b %f %S' "$1") && echo "$1 $2 $3"
running=0; for p in "$STATE"/pid.*; do [ -e "$p" ] && kill -0 "$(cat "$p")" 2>/dev/null \
    && running=$((running + 1)); done; echo "$running"
for e in "$STATE"/end.*; do [ -e "$e" ] && echo "${e##*.} $(head -c 200 "$e")"; done; true"""


@dataclass
class FillMeasurement:
    fraction: float  # used fraction reached (0..1), -1 when never measured
    bytes_used: int
    ends: dict[str, str]  # writer index -> target | enospc | error: ...
    running: int
    host_lost: bool  # the fill's polls went unanswered (the fill's view, not proof of death)
    seconds: float
    failed_polls: int = 0  # progress polls in a row that got no answer when the wait ended

    @property
    def errors(self) -> list[str]:
        return [f"writer {i}: {e}" for i, e in sorted(self.ends.items()) if e.startswith("error")]


@dataclass
class DiskFill:
    host: Host
    directory: str
    fillers: int = 8
    fill_to: float = 0.95
    timeout_s: float = 300.0
    history: History | None = None
    name: str = "disk_fill"
    _started: float = field(default=0.0, init=False)
    _last: FillMeasurement | None = field(default=None, init=False)

    @property
    def target_name(self) -> str:
        return self.host.name

    def _env(self) -> dict[str, str]:
        return {"STATE": STATE, "CHUNK": str(CHUNK_MB)}

    def inject(self) -> Applied:
        d = shlex.quote(self.directory)
        target = round(self.fill_to * 1000)
        self.host.put(WRITER.encode(), f"{STATE}/writer.sh", 0o755)
        self.host.run(
            f"rm -f {STATE}/end.* {STATE}/pid.*; for i in $(seq 1 {self.fillers}); do "
            f"setsid nohup sh {STATE}/writer.sh $i {d} {target} >/dev/null 2>&1 < /dev/null & "
            f"echo $! > {STATE}/pid.$i; done", timeout=CMD_TIMEOUT_S, env=self._env())
        self._started = time.monotonic()
        return Applied(self.name, self.host.name,
                       {"directory": self.directory, "fillers": self.fillers,
                        "fill_to": self.fill_to})

    def poll(self) -> FillMeasurement | None:
        res = self.host.run(f"set -- {shlex.quote(self.directory)}; {PROGRESS}",
                            timeout=CMD_TIMEOUT_S, check=False, env=self._env())
        lines = res.stdout.splitlines()
        if not res.ok or len(lines) < 2:
            return None
        blocks, free, bsize = (int(x) for x in lines[0].split())
        ends = dict(line.split(" ", 1) for line in lines[2:] if " " in line)
        m = FillMeasurement(round((blocks - free) / blocks, 4), (blocks - free) * bsize, ends,
                            int(lines[1]), False, round(time.monotonic() - self._started, 1))
        self._last = m
        if self.history:
            self.history.append("fill", self.host.name, fraction=m.fraction, running=m.running,
                                bytes_used=m.bytes_used, ends=len(m.ends))
        return m

    def wait(self, lost_after_s: float = 6.0,
             host_dead: Callable[[], bool] | None = None) -> FillMeasurement:
        """Until every writer ended, LOST_POLLS polls in a row spanning `lost_after_s` got no
        answer (or an observer says the host died: `host_dead`), or the timeout."""
        deadline = self._started + self.timeout_s
        failing_since: float | None = None
        failed = 0
        while time.monotonic() < deadline:
            if host_dead is not None and host_dead():
                return self._lost(failed)
            m = self.poll()
            now = time.monotonic()
            if m is None:
                failing_since = failing_since or now
                failed += 1
                if failed >= LOST_POLLS and now - failing_since >= lost_after_s:
                    return self._lost(failed)
            else:
                failing_since, failed = None, 0
                if m.running == 0:
                    return m
            time.sleep(POLL_S)  # progress sampling cadence, not synchronisation
        return self._last or self._lost(failed)

    def _lost(self, failed_polls: int) -> FillMeasurement:
        last = self._last
        return FillMeasurement(last.fraction if last else -1.0, last.bytes_used if last else 0,
                               dict(last.ends) if last else {}, -1, True,
                               round(time.monotonic() - self._started, 1), failed_polls)

    @staticmethod
    def shortfall(m: FillMeasurement, fill_to: float) -> str:
        """Why the fill proves nothing, or '' if it reached its target (or ENOSPC)."""
        if m.fraction < 0:
            return "the fill level was never measured"
        if m.fraction + 0.005 >= fill_to or any(e == "enospc" for e in m.ends.values()):
            return ""
        return f"fill reached {m.fraction:.1%} of the filesystem, short of {fill_to:.0%}"

    def heal(self) -> None:
        self.host.run(f"for p in {STATE}/pid.*; do [ -e \"$p\" ] && kill -9 \"$(cat \"$p\")\" "
                      f"2>/dev/null; rm -f \"$p\"; done; "
                      f"rm -f {shlex.quote(self.directory)}/repro-fill-* 2>/dev/null; true",
                      timeout=CMD_TIMEOUT_S, check=False)
