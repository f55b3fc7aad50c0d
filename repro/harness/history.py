"""The history: one time-ordered record of what happened during a run.

Model (after Jepsen's history): every fact is an Event with a monotonic time `t`
(seconds since the run's clock started), a `kind` that says which producer wrote
it, the `host` it concerns, and a flat dict of fields. Kinds used across layers:

  fault.start / fault.stop    a fault window opened / closed (fields: fault, applied, measured)
  fault.measure               what the fault achieved (e.g. loss measured, MTU probed)
  op                          one workload operation (fields: name, ok, latency_s, ...)
  stream                      a flood stream counter sample (fields: stream, bytes, alive)
  probe                       a heartbeat sample (fields: tcp_ok, ssh_ok, rtt_s, boot_id)
  kernel                      a finding in a kernel log (fields: pattern, line)
  host                        a host life-cycle event (ready, exited, reset)
  note                        anything a person should read in the report

Producers append from many threads; appends go to memory at once and to the
JSON-lines file through a writer thread, so a probe never waits on the disk
(a machine busy writing can stall a flush for seconds: the observer would
then measure the disk, not the host). The checker sees only the history.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Event:
    t: float
    kind: str
    host: str = ""
    fields: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)

    def to_json(self) -> str:
        return json.dumps({"t": round(self.t, 6), "kind": self.kind, "host": self.host,
                           **self.fields}, sort_keys=False, default=str)

    @staticmethod
    def from_json(line: str) -> Event:
        raw = json.loads(line)
        t, kind, host = raw.pop("t"), raw.pop("kind"), raw.pop("host", "")
        return Event(t=float(t), kind=str(kind), host=str(host), fields=raw)


class History:
    """Append-only, thread-safe; optionally mirrored line by line to a file."""

    def __init__(self, path: Path | None = None, clock: float | None = None):
        self._events: list[Event] = []
        self._lock = threading.Lock()
        self._t0 = time.monotonic() if clock is None else clock
        self.wall_t0 = time.time()
        self.path = path
        self._pending: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        if path:
            self._writer = threading.Thread(target=self._write_lines, args=(path,),
                                            name="history-writer", daemon=True)
            self._writer.start()

    def now(self) -> float:
        return time.monotonic() - self._t0

    def append(self, kind: str, host: str = "", t: float | None = None, **fields: Any) -> Event:
        event = Event(t=self.now() if t is None else t, kind=kind, host=host, fields=fields)
        with self._lock:
            self._events.append(event)
        if self._writer:
            self._pending.put(event.to_json())
        return event

    def _write_lines(self, path: Path) -> None:
        with path.open("a", encoding="utf-8") as f:
            while (line := self._pending.get()) is not None:
                f.write(line + "\n")
                if self._pending.empty():
                    f.flush()

    def events(self) -> list[Event]:
        with self._lock:
            return sorted(self._events, key=lambda e: e.t)

    def close(self) -> None:
        """Write out everything appended so far; later appends stay in memory only."""
        writer, self._writer = self._writer, None
        if writer:
            self._pending.put(None)
            writer.join(timeout=60)

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events())


def load(path: Path) -> list[Event]:
    with path.open(encoding="utf-8") as f:
        return sorted((Event.from_json(line) for line in f if line.strip()), key=lambda e: e.t)


def of_kind(events: Iterable[Event], *kinds: str) -> list[Event]:
    return [e for e in events if e.kind in kinds]
