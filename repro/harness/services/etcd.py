"""etcd: a real coordination store on a host of the run, and the harness's watch on it.

Model: `EtcdServer(host, run)` starts Debian's etcd (3.4) on one host of the run, in
the foreground of a setsid'd shell (its data dir in the host's scratch dir, gone with
the host), listening for clients on port 2379 of the host's address; it is ready when
`etcdctl endpoint health` from the runner says so. It is not under test: incidents
run their agents against it. `endpoint` is the URL the agents and the runner use.

`Watch(endpoint, prefix, on_put, name)` is the harness's view: one `etcdctl watch
--prefix -w json` process on the runner (the real client, etcd's own watch: no
polling), read by a thread; each PUT event calls `on_put(key, value, revision)` as
it arrives (DELETEs, e.g. a lease expiring, are ignored). It watches from revision 1,
so a put made while the watch was still connecting is replayed, not lost. The process is bounded by
`max_s` (coreutils timeout), stopped when the block ends, and dies with the runner.
"""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from repro.harness.errors import PrerequisiteError, ProvisionError
from repro.harness.hosts.base import Host
from repro.harness.procs import eventually
from repro.harness.run import Run

CLIENT_PORT = 2379
READY_TIMEOUT_S = 30.0
CMD_TIMEOUT_S = 10.0
DATA_DIR = "/var/lib/repro-etcd"


def etcdctl(endpoint: str, *args: str, timeout: float = CMD_TIMEOUT_S
            ) -> subprocess.CompletedProcess[str]:
    """Run the runner's etcdctl (API v3) against `endpoint`."""
    try:
        return subprocess.run(
            ["etcdctl", f"--endpoints={endpoint}", "--dial-timeout=2s",
             "--command-timeout=3s", *args], capture_output=True, text=True,
            timeout=timeout, check=False, env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"})
    except FileNotFoundError as exc:
        raise PrerequisiteError("etcdctl is not installed on the runner",
                                "run setup/setup.sh packages (etcd-client)") from exc
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(args, 124, "", "timed out")


@dataclass
class EtcdServer:
    host: Host
    run: Run
    name: str = "etcd"

    @property
    def endpoint(self) -> str:
        return f"http://{self.host.address}:{CLIENT_PORT}"

    def __enter__(self) -> EtcdServer:
        h, peer = self.host, f"http://{self.host.address}:2380"
        res = h.run(
            f"command -v etcd >/dev/null || exit 3; rm -rf {DATA_DIR}; "
            f"setsid etcd --name {self.run.name(self.name)} --data-dir {DATA_DIR} "
            f"--listen-client-urls http://0.0.0.0:{CLIENT_PORT} "
            f"--advertise-client-urls {self.endpoint} --listen-peer-urls {peer} "
            f"--initial-advertise-peer-urls {peer} --initial-cluster "
            f"{self.run.name(self.name)}={peer} > /var/log/repro-etcd.log 2>&1 < /dev/null &",
            timeout=CMD_TIMEOUT_S, check=False)
        if res.exit_code == 3:
            raise PrerequisiteError(f"{h.name} has no etcd", "run setup/setup.sh image "
                                    "(the host image includes etcd-server)")
        if not eventually(lambda: etcdctl(self.endpoint, "endpoint", "health").returncode == 0,
                          timeout=READY_TIMEOUT_S):
            log = h.run("tail -n 5 /var/log/repro-etcd.log", timeout=CMD_TIMEOUT_S,
                        check=False).stdout
            raise ProvisionError(f"etcd on {h.name} was not healthy within "
                                 f"{READY_TIMEOUT_S:.0f} s: {log.strip()[-300:]}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.host.run("pkill -KILL -x etcd; true", timeout=CMD_TIMEOUT_S, check=False)


OnPut = Callable[[str, str, int], None]


@dataclass
class Watch:
    endpoint: str
    prefix: str
    on_put: OnPut
    name: str            # run.name("watch"): the watch's name in the process table
    max_s: float = 600.0
    proc: subprocess.Popen[str] | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def __enter__(self) -> Watch:
        # etcdctl under a shell that reads the runner's pipe: when the runner goes (even
        # SIGKILLed) the pipe closes, `read` returns and the shell kills the watch; $0
        # (the run's name for it) makes it findable by `pgrep -f repro-<short>-`.
        self.proc = subprocess.Popen(
            ["sh", "-c", 'timeout "$1" etcdctl --endpoints="$2" --dial-timeout=2s watch '
             '--prefix --rev=1 "$3" -w json & read _; kill $! 2>/dev/null',
             self.name, str(int(self.max_s)), self.endpoint, self.prefix],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"})
        self._thread = threading.Thread(target=self._read, daemon=True, name="etcd-watch")
        self._thread.start()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError, KeyError):
                for ev in json.loads(line).get("Events") or []:
                    if ev.get("type", 0) != 0:  # 0 PUT, 1 DELETE
                        continue
                    kv = ev["kv"]
                    self.on_put(base64.b64decode(kv["key"]).decode(errors="replace"),
                                base64.b64decode(kv.get("value", "")).decode(errors="replace"),
                                int(kv.get("mod_revision", 0)))

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            with contextlib.suppress(OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()   # the shell kills the watch and exits
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        if self._thread is not None:
            self._thread.join(timeout=10)
