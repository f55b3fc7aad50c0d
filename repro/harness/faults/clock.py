"""Clock: a host's wall clock jumped, skewed or sped up, read back from the host.

Model: the fault sets the clock the host's processes see to `start` (epoch seconds;
None: the real time plus `skew_s`) running `speed` times faster than real time.
Two mechanisms, chosen by the host:

  kernel     a host with its own kernel (QEMU guest: `vm`): `date -s` sets the real
             kernel clock (the guest runs no time sync, so nothing sets it back);
             every process sees it. Jump and skew only: a kernel clock cannot run 100x
             faster (adjtimex's tick allows +-10 %), so `speed` != 1 is refused.
  faketime   a container (shares the runner's kernel: its clock cannot be set):
             libfaketime from Debian. A keeper process `faketime -f "+OFFSETs xSPEED"`
             owns the fake clock's shared memory (FAKETIME_SHARED) and with
             FAKETIME_DONT_RESET=1 every process that joins it (`wrap(command)`) and
             every process those start see ONE continuous clock, not one restarted
             per child. Limits: only dynamically linked programs started through
             `wrap` are faked (not sshd, not static or Go binaries such as etcd, not
             processes started before); the kernel's own timers (TCP, file mtimes)
             stay real; sleeps are divided by `speed`, CPU work is not, so at 120x one
             real millisecond of scheduling delay is 120 fake ones.

`now()` reads the clock back from the host (through `wrap`), which is what the
fault measures after injecting: where the clock stands and how fast it runs
(reads `RATE_WINDOW_S` apart, the window widened, up to `MAX_WINDOW_S`, until the reads'
own round trips cannot sway the verdict: one slow ssh read on a loaded runner once made
a 120x clock measure 152x over 0.5 s). A clock that did not land there is a shortfall.
Heal: the keeper killed (faketime), or the real time written back (kernel).
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field

from repro.harness.errors import FaultError
from repro.harness.faults.base import Applied
from repro.harness.faults.link import CMD_TIMEOUT_S
from repro.harness.hosts.base import Host

LIBFAKETIME = "/usr/$LIB/faketime/libfaketime.so.1"  # $LIB: expanded by ld.so, not a shell
STATE = "/run/repro-clock"
RATE_WINDOW_S = 0.5       # between two reads of the rate; repeated while undecided
MAX_WINDOW_S = 5.0        # the widest window before the estimate alone decides
MAX_OFFSET_REAL_S = 2.0   # read-back tolerance, in real seconds (times speed in fake ones)
MAX_RATE_ERROR = 0.25     # measured speed within 25 % of the asked one


@dataclass(frozen=True)
class Read:
    """One read of the host's clock: `value` was read somewhere between the runner's
    monotonic `before` and `after` (an ssh round trip)."""
    before: float
    value: float
    after: float


@dataclass(frozen=True)
class Rate:
    """The host clock's speed between two reads: `estimate` from the reads' midpoints, and
    the bounds that hold wherever in its round trip each read really happened."""
    estimate: float
    low: float
    high: float

    @classmethod
    def between(cls, a: Read, b: Read) -> Rate:
        moved = b.value - a.value
        mid = (b.before + b.after) / 2 - (a.before + a.after) / 2
        longest, shortest = b.after - a.before, b.before - a.after
        return cls(moved / max(mid, 1e-3), moved / max(longest, 1e-3),
                   moved / max(shortest, 1e-3))  # reads are sequential: shortest >= the sleep

    def verdict(self, speed: float) -> bool | None:
        """True: every rate the reads allow is within MAX_RATE_ERROR of `speed`; False:
        none is; None: the reads are too short apart to tell."""
        lo, hi = speed * (1 - MAX_RATE_ERROR), speed * (1 + MAX_RATE_ERROR)
        if lo <= self.low and self.high <= hi:
            return True
        if self.high < lo or self.low > hi:
            return False
        return None

    def near(self, speed: float) -> bool:
        """The estimate within MAX_RATE_ERROR (what decides when the widest window did not)."""
        return abs(self.estimate / speed - 1) <= MAX_RATE_ERROR


@dataclass
class Clock:
    host: Host
    start: float | None = None   # epoch seconds the clock jumps to; None: now + skew_s
    skew_s: float = 0.0
    speed: float = 1.0
    name: str = "clock"
    _env: dict[str, str] = field(default_factory=dict, init=False)
    _set: bool = field(default=False, init=False)

    @property
    def target_name(self) -> str:
        return self.host.name

    @property
    def mechanism(self) -> str:
        return "kernel" if getattr(self.host, "vm", None) is not None else "faketime"

    def inject(self) -> Applied:
        if self.speed <= 0:
            raise FaultError(f"clock speed must be positive, got {self.speed}")
        target = self.start if self.start is not None else time.time() + self.skew_s
        if self.mechanism == "kernel":
            if self.speed != 1:
                raise FaultError(f"{self.host.name}: a kernel clock cannot run {self.speed:g}x "
                                 "faster; speed needs libfaketime (a Docker host)")
            self._set = True
            self.host.run(f"date -u -s @{target:.3f} >/dev/null", timeout=CMD_TIMEOUT_S)
        else:
            self._start_keeper(target)
        return self._measure(target)

    def _start_keeper(self, target: float) -> None:
        # an offset from the real time, not "@DATE": libfaketime parses a date in each
        # process's own TZ, so processes in other zones would see other clocks
        spec = f"{target - time.time():+.3f}s x{self.speed:g}"
        self._set = True
        res = self.host.run(
            f"mkdir -p {STATE} && cd {STATE} && rm -f shared && "
            f"TZ=UTC FAKETIME_DONT_RESET=1 setsid faketime -f {shlex.quote(spec)} "
            "sh -c 'echo \"$FAKETIME_SHARED\" > shared.tmp && mv shared.tmp shared; "
            "exec sleep 2147483647' > keeper.log 2>&1 < /dev/null & echo $! > keeper.pid; "
            f"for i in $(seq 100); do [ -s {STATE}/shared ] && break; sleep 0.05; done; "
            f"cat {STATE}/shared", timeout=CMD_TIMEOUT_S, check=False)
        shared = res.stdout.strip()
        if not res.ok or not shared:
            raise FaultError(f"{self.host.name}: faketime did not start ({res.stderr.strip()})"
                             " — is Debian's faketime in the host image?")
        self._env = {"LD_PRELOAD": LIBFAKETIME, "FAKETIME": spec, "FAKETIME_DONT_RESET": "1",
                     "FAKETIME_SHARED": shared}

    def wrap(self, command: str) -> str:
        """`command` run on the fake clock (faketime); unchanged on a kernel clock."""
        if not self._env:
            return command
        assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in self._env.items())
        return f"env {assigns} {command}"

    def now(self) -> float:
        """The host's clock as its processes see it (epoch seconds)."""
        res = self.host.run(self.wrap("date +%s.%N"), timeout=CMD_TIMEOUT_S)
        return float(res.stdout.strip())

    def _timed_read(self) -> Read:
        before = time.monotonic()
        value = self.now()
        return Read(before, value, time.monotonic())

    def _measure(self, target: float) -> Applied:
        first = self._timed_read()
        while True:
            time.sleep(RATE_WINDOW_S)  # the measurement window of the clock's rate, widened
            last = self._timed_read()  # until the reads' own lengths cannot sway the verdict
            rate = Rate.between(first, last)
            landed = rate.verdict(self.speed)
            if landed is not None or last.after - first.before >= MAX_WINDOW_S:
                break
        offset = first.value - target
        applied = Applied(self.name, self.host.name,
                          {"mechanism": self.mechanism, "start": round(target, 3),
                           "speed": self.speed},
                          {"read_back": round(first.value, 3), "offset_s": round(offset, 3),
                           "rate": round(rate.estimate, 2),
                           "rate_bounds": [round(rate.low, 2), round(rate.high, 2)],
                           "window_s": round(last.after - first.before, 2)})
        if abs(offset) > MAX_OFFSET_REAL_S * self.speed:
            applied.shortfall = f"the host's clock reads {offset:+.1f} s from where it was set"
        elif not (rate.near(self.speed) if landed is None else landed):
            applied.shortfall = (f"the host's clock runs {rate.estimate:.2f}x "
                                 f"({rate.low:.2f}-{rate.high:.2f}x), not {self.speed:g}x")
        return applied

    def heal(self) -> None:
        if not self._set:
            return
        self._set = False
        if self.mechanism == "kernel":
            self.host.run(f"date -u -s @{time.time():.3f} >/dev/null", timeout=CMD_TIMEOUT_S,
                          check=False)
        else:
            self.host.run(f"kill -KILL -$(cat {STATE}/keeper.pid) 2>/dev/null; "
                          f"rm -rf {STATE}; true",
                          timeout=CMD_TIMEOUT_S, check=False)
            self._env = {}
