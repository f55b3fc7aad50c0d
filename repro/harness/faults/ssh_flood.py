"""N concurrent bulk ssh streams from a client host to a target (the incident's load).

Model: each stream is the postmortem's `cat /dev/zero | ssh TARGET 'cat > /dev/null'`,
run on the client host in its own process group. The flood has two phases:

1. *Log in.* One plain login from client to target is timed first: it sizes
   the login wait (0.1 s on Docker, about 2 s on a TCG guest, where five
   concurrent logins take some 15 s). Streams then log in a few at a time
   (sshd's default `MaxStartups 10:30:100` refuses a share of simultaneous
   unauthenticated connections); a refused login is retried. A stream is up
   once the remote side has written its marker, i.e. the session is
   authenticated and `cat` runs.
2. *Go.* Once every stream is up (or the login budget is spent), all the local
   `cat /dev/zero` are released at once: each waits, blocked and using no CPU,
   to open a FIFO for reading; the go step opens it for writing, which lets
   every waiting reader through. N streams carry bulk data concurrently, as
   in the incident. (A polling wait would cost a single-CPU TCG guest the very
   CPU its ssh logins need.)

*Lighter streams* (`rate_mbit`, 0 = as fast as the hosts go): each stream's TCP flow
is paced on the client by `fq maxrate` (a root qdisc on the interface towards the
target, removed at heal). The scenario asks for it where the hosts' CPUs, not the
network, would set the pace: a 1-vCPU TCG guest receiving 20 unpaced streams
spends its CPU on them, and an observer's ssh session on it then measures the
flood rather than the host. A cap that cannot be set is an error, never an unpaced
flood.

Per-stream bytes are the `wchar` of each stream's local `cat` (bytes pushed
into the ssh pipe), sampled into the history. Fewer streams up than asked is
a shortfall; the checker decides whether the target's own collapse explains it.

The flood's files live in `<scratch dir>/repro-flood` on the client (/tmp on
hosts the run created); the client logs in with `ssh_command` (on an existing
machine: the run's own ssh config and key, the target's port and user). Heal
kills the streams' process groups; on hosts the run created it also kills any
`cat /dev/zero` left, never on an existing machine (not every such process is
the harness's there).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from repro.harness.faults.base import Applied
from repro.harness.history import History
from repro.harness.hosts.base import Host, is_borrowed, scratch_dir, ssh_command

LOGIN_BATCH = 5          # concurrent unauthenticated logins, well under MaxStartups' 10
LOGIN_ATTEMPTS = 4
LOGIN_TIMEOUT_S = 15.0   # per batch, at least; more where one login is slow (see _login_wait)
LOGIN_WAIT_FACTOR = 3.0  # a batch may take this many times LOGIN_BATCH sequential logins
# Control commands on the client: quick on Docker (docker exec), seconds over ssh to a TCG guest
# under load; the bound is there so a dead client cannot hang the run.
CONTROL_TIMEOUT_S = 45.0
FLOOD_DIR = "repro-flood"  # under the client's scratch dir
SSH_OPTIONS = "-o ConnectTimeout=10"


@dataclass(frozen=True)
class StreamSample:
    stream: int
    up: bool
    exited: bool
    bytes: int


# One stream, run as `setsid sh stream.sh I SSH-WORDS... &` in its own process group.
STREAM_SH = r"""d=$(dirname "$0"); i=$1; shift
echo $$ > "$d/$i.pgid"
sh -c 'echo $$ > "$1/$2.pid"; read -r _ < "$1/go"; exec cat /dev/zero' \
    _ "$d" "$i" \
  | nice -n 10 "$@" 'echo up >&2; exec cat > /dev/null' 2> "$d/$i.err"
echo $? > "$d/$i.rc"
"""


def _stream_command(flood_dir: str, i: int, ssh: str) -> str:
    return (f"rm -f {flood_dir}/{i}.*\n"
            f"setsid sh {flood_dir}/stream.sh {i} {ssh} < /dev/null > /dev/null 2>&1 &")


# Seconds one plain login from the client to the target takes (coreutils date on both backends).
_TIME_LOGIN = ('s=$(date +%s.%N); {ssh} true || exit 1; '
               'e=$(date +%s.%N); echo "$s $e"')


# One line per stream: "I UP RC BYTES". Shell builtins only: no process per stream.
_POLL = r"""cd {d} || exit 0
for f in [0-9]*.pgid; do
  [ -e "$f" ] || continue
  i=${f%.pgid}; up=0; rc=-; b=0
  if [ -s "$i.err" ]; then while read -r l; do [ "$l" = up ] && up=1; done < "$i.err"; fi
  [ -s "$i.rc" ] && read -r rc < "$i.rc"
  if [ -s "$i.pid" ]; then
    read -r p < "$i.pid"
    if [ -r "/proc/$p/io" ]; then
      while read -r k v; do [ "$k" = wchar: ] && b=$v; done < "/proc/$p/io"
    fi
  fi
  echo "$i $up $rc $b"
done"""
# Open the FIFO for writing (every blocked reader gets through), hold it a moment for a
# straggler, close it: the readers see EOF and exec cat. Bounded if no reader is waiting.
_GO = "timeout 5 sh -c 'exec 3> {d}/go; sleep 1'; touch {d}/released"
# The client's interface towards the target, for the pacing qdisc.
_DEV = "ip -o route get {addr} | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p'"
_PACE = "dev=$(" + _DEV + ") && [ -n \"$dev\" ] && tc qdisc replace dev $dev root fq maxrate {rate}"
_UNPACE = "dev=$(" + _DEV + ") && tc qdisc del dev $dev root 2>/dev/null; true"


@dataclass
class SshFlood:
    client: Host
    target: Host
    streams: int
    history: History
    rate_mbit: float = 0.0  # each stream's pace (fq maxrate on the client); 0: unpaced
    name: str = "ssh_flood"
    started_at: float | None = field(default=None, init=False)
    up: set[int] = field(default_factory=set, init=False)
    last_bytes: dict[int, int] = field(default_factory=dict, init=False)
    bytes_at_go: dict[int, int] = field(default_factory=dict, init=False)
    login_timeout_s: float = field(default=LOGIN_TIMEOUT_S, init=False)

    @property
    def target_name(self) -> str:
        return self.target.name

    @property
    def flood_dir(self) -> str:
        return f"{scratch_dir(self.client)}/{FLOOD_DIR}"

    @property
    def login(self) -> str:
        """How the client logs in to the target (shell words)."""
        return ssh_command(self.client, self.target, SSH_OPTIONS)

    def poll(self) -> list[StreamSample]:
        res = self.client.run(_POLL.replace("{d}", self.flood_dir), timeout=CONTROL_TIMEOUT_S,
                              check=False)
        samples = []
        for line in res.stdout.splitlines():
            i, up, rc, b = line.split()
            sample = StreamSample(int(i), up == "1", rc != "-", int(b))
            # a dead stream's /proc entry is gone: keep the last count it reached
            self.last_bytes[sample.stream] = max(self.last_bytes.get(sample.stream, 0),
                                                 sample.bytes)
            samples.append(sample)
        return samples

    def _log_in(self, pending: list[int]) -> None:
        for attempt in range(LOGIN_ATTEMPTS):
            for start in range(0, len(pending), LOGIN_BATCH):
                batch = pending[start:start + LOGIN_BATCH]
                self.client.run("\n".join(_stream_command(self.flood_dir, i, self.login)
                                           for i in batch), timeout=CONTROL_TIMEOUT_S)
                self._wait_batch(set(batch))
            pending = [i for i in pending if i not in self.up]
            if not pending:
                return
            self.history.append("note", self.target.name,
                                text=f"{len(pending)} ssh logins refused or slow; retry "
                                     f"{attempt + 1}/{LOGIN_ATTEMPTS - 1}")
            self.client.run("; ".join(f"kill -KILL -$(cat {self.flood_dir}/{i}.pgid) 2>/dev/null"
                                      for i in pending) + "; true", timeout=CONTROL_TIMEOUT_S)

    def _login_wait(self) -> float:
        """Batch login timeout sized by one timed login (a failed one keeps the floor)."""
        res = self.client.run(_TIME_LOGIN.format(ssh=self.login),
                              timeout=CONTROL_TIMEOUT_S, check=False)
        try:
            start, end = (float(x) for x in res.stdout.split())
        except ValueError:
            return LOGIN_TIMEOUT_S
        one = end - start
        self.history.append("note", self.target.name, text=f"one ssh login from "
                            f"{self.client.name} takes {one:.2f} s")
        return max(LOGIN_TIMEOUT_S, LOGIN_WAIT_FACTOR * LOGIN_BATCH * one)

    def _wait_batch(self, batch: set[int]) -> None:
        deadline = time.monotonic() + self.login_timeout_s
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            samples = {s.stream: s for s in self.poll() if s.stream in batch}
            self.up |= {i for i, s in samples.items() if s.up and not s.exited}
            if all(i in samples and (samples[i].up or samples[i].exited) for i in batch):
                return
            # condition poll cadence; on a slow guest each poll costs the CPU the logins need
            time.sleep(max(0.1, time.monotonic() - t0))

    def _pace(self) -> None:
        """Cap each stream's flow at `rate_mbit` (raises HostCommandError if tc cannot)."""
        kbit = round(self.rate_mbit * 1000)
        self.client.run(_PACE.format(addr=self.target.address, rate=f"{kbit}kbit"),
                        timeout=CONTROL_TIMEOUT_S)

    def inject(self) -> Applied:
        d = self.flood_dir
        self.client.run(f"rm -rf {d}; mkdir -p {d} && mkfifo {d}/go", timeout=CONTROL_TIMEOUT_S)
        if self.rate_mbit:
            self._pace()
        self.client.put(STREAM_SH.encode(), f"{d}/stream.sh", 0o755)
        self.login_timeout_s = self._login_wait()
        self._log_in(list(range(1, self.streams + 1)))
        for s in self.poll():
            self.bytes_at_go[s.stream] = s.bytes
        # the go cannot precede this stamp; it follows by the control channel's latency
        self.started_at = self.history.now()
        self.client.run(_GO.replace("{d}", d), timeout=CONTROL_TIMEOUT_S)
        applied = Applied(self.name, self.target.name,
                          {"streams": self.streams, "client": self.client.name,
                           "stream_rate_mbit": self.rate_mbit or None},
                          {"streams_up": len(self.up)}, began_t=self.started_at)
        if len(self.up) < self.streams:
            applied.shortfall = (f"only {len(self.up)}/{self.streams} ssh streams logged in "
                                 f"to {self.target.name}")
        return applied

    def sample(self) -> list[StreamSample]:
        """Record one counter sample per stream in the history."""
        samples = self.poll()
        t = self.history.now()
        for s in samples:
            self.history.append("stream", self.target.name, t=t, stream=s.stream, up=s.up,
                                alive=not s.exited, bytes=self.last_bytes.get(s.stream, s.bytes),
                                bytes_at_go=self.bytes_at_go.get(s.stream, 0))
        return samples

    def heal(self) -> None:
        d = self.flood_dir
        backstop = "" if is_borrowed(self.client) else "pkill -KILL -f 'cat /dev/zero' ; "
        self.client.run(
            f"for f in {d}/*.pgid; do [ -e \"$f\" ] && kill -KILL -$(cat $f) 2>/dev/null;"
            f" done; {backstop}rm -rf {d}; true", timeout=CONTROL_TIMEOUT_S, check=False)
        if self.rate_mbit:
            self.client.run(_UNPACE.format(addr=self.target.address),
                            timeout=CONTROL_TIMEOUT_S, check=False)
