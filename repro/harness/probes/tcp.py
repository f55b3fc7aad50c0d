"""TcpProbe: the runner connects to some hosts' ports on a cadence, from outside.

Model: one thread (a slow host never delays the others: each connect has its own
timeout, `interval_s` at least 0.5 s, and the hosts are tried in parallel per round)
appends one `probe` event per host per round: leg "tcp", `ok`. A TCP connect shows
the host's kernel is on the network, nothing more (a frozen container's kernel still
completes handshakes). The rounds double as the observer's pulse: a silence in them is
the runner starved (repro.harness.rules.observer_starved).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from repro.harness.history import History


def connects(address: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class TcpProbe:
    history: History
    targets: Sequence[tuple[str, str, int]]   # (host name, address, port)
    interval_s: float = 0.5
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def __enter__(self) -> TcpProbe:
        self._thread = threading.Thread(target=self._loop, daemon=True, name="tcp-probe")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        timeout = max(0.5, self.interval_s)
        with ThreadPoolExecutor(max_workers=max(1, len(self.targets))) as pool:
            while not self._stop.is_set():
                oks = pool.map(lambda t: connects(t[1], t[2], timeout), self.targets)
                for (name, _, _), ok in zip(self.targets, oks, strict=True):
                    self.history.append("probe", name, leg="tcp", ok=ok)
                self._stop.wait(self.interval_s)
