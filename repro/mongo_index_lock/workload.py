"""The production-like workload, the background batch job and the lock sampler.

Model: each is a thread with its own database session (drivers.py) that
appends to the run's History until `stop` is set.

- Workload clients run open-loop at a fixed rate (workload_rate / clients
  each); even-numbered clients write, odd ones read. Every operation is one
  `op` event whose `t` is the time it was *scheduled* and whose `latency_s`
  runs from then to its completion, so a client blocked for 3 s shows the
  operations it could not even start as late (no coordinated omission).
  `service_s` is the time the database itself took.
- The batch job runs long write transactions back to back (`batch` events,
  phase begin / commit, with the rows it wrote), a pause of `gap_s` between.
  Stopping cancels the transaction in flight (phase "stopped"), so an
  interrupted run does not wait out a long transaction.
- The sampler reads pg_locks or serverStatus every `interval_s` (`db` events).
- The ticker touches nothing but the clock: a `tick` event every 50 ms. A gap
  in the ticks means the harness itself (or the whole machine) was frozen, so
  latencies measured across it say nothing about the database.

A thread that cannot reach the database writes a `note` and ends; the
checker then finds the workload missing and calls the run inconclusive.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from repro.harness.history import History
from repro.mongo_index_lock.drivers import Batch, Client, Driver

JOIN_GRACE_S = 10.0
SAMPLE_INTERVAL_S = 0.1
TICK_S = 0.05


@dataclass
class Threads:
    """The background threads of one scenario, started and stopped together."""

    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def spawn(self, name: str, target: Callable[[], None]) -> None:
        t = threading.Thread(target=target, name=f"repro-{name}", daemon=True)
        self.threads.append(t)
        t.start()

    cancels: list[Callable[[], None]] = field(default_factory=list)

    def stop_all(self, timeout_s: float) -> list[str]:
        """Set stop, cancel work in flight, join every thread within one bound.

        Returns the names of threads still running at the deadline.
        """
        self.stop.set()
        for cancel in self.cancels:
            with contextlib.suppress(Exception):  # best effort; the join below is bounded
                cancel()
        deadline = time.monotonic() + timeout_s
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return [t.name for t in self.threads if t.is_alive()]


def start_workload(threads: Threads, driver: Driver, history: History, rate: float,
                   clients: int) -> None:
    period = clients / rate
    history.append("workload", event="start", rate=rate, clients=clients)
    for i in range(clients):
        role = "write" if i % 2 == 0 else "read"
        name = f"client{i}"
        threads.spawn(name, functools.partial(_client_loop, threads.stop, driver, history,
                                              name, role, period, i * period / clients))


def _client_loop(stop: threading.Event, driver: Driver, history: History, name: str,
                 role: str, period: float, offset: float) -> None:
    client: Client | None = None
    seq = 0
    due = history.now() + offset
    try:
        while not stop.is_set():
            wait = due - history.now()
            if wait > 0 and stop.wait(wait):  # the schedule's pacing, not synchronisation
                break
            begin = history.now()
            error = ""
            try:
                if client is None:
                    client = driver.client(name)
                (client.write if role == "write" else client.read)(seq)
            except Exception as exc:
                error = f"{type(exc).__name__}: {str(exc).strip()[:200]}"
                if client is not None:
                    client.close()
                client = None
            end = history.now()
            history.append("op", host=name, t=due, name=role, ok=not error,
                           latency_s=round(end - due, 6), service_s=round(end - begin, 6),
                           **({"error": error} if error else {}))
            seq += 1
            due += period
    finally:
        if client is not None:
            client.close()


def start_batch(threads: Threads, driver: Driver, history: History, hold_s: float,
                gap_s: float) -> None:
    if hold_s <= 0:
        return
    try:
        batch = driver.batch()
    except Exception as exc:
        history.append("note", host="batch", text=f"batch job could not connect: {exc}")
        return
    threads.cancels.append(batch.cancel)
    threads.spawn("batch", lambda: _batch_loop(threads.stop, batch, history, hold_s, gap_s))


def _batch_loop(stop: threading.Event, batch: Batch, history: History, hold_s: float,
                gap_s: float) -> None:
    try:
        while not stop.is_set():
            history.append("batch", host="batch", phase="begin", hold_s=hold_s)
            try:
                rows = batch.run(hold_s)
            except Exception as exc:
                phase = "stopped" if stop.is_set() else "abort"
                history.append("batch", host="batch", phase=phase,
                               error=f"{type(exc).__name__}: {str(exc).strip()[:200]}")
                return
            history.append("batch", host="batch", phase="commit", rows=rows)
            if stop.wait(gap_s):  # the batch job's own pause between transactions
                break
    finally:
        batch.close()


def start_sampler(threads: Threads, driver: Driver, history: History,
                  interval_s: float = SAMPLE_INTERVAL_S) -> None:
    threads.spawn("sampler", lambda: _sample_loop(threads.stop, driver, history, interval_s))


def _sample_loop(stop: threading.Event, driver: Driver, history: History,
                 interval_s: float) -> None:
    try:
        sampler = driver.sampler()
    except Exception as exc:
        history.append("note", host="sampler", text=f"sampler could not connect: {exc}")
        return
    failures = 0
    try:
        while not stop.is_set():
            try:
                history.append("db", host="db", **sampler.sample())
            except Exception as exc:
                failures += 1
                if failures == 1:
                    history.append("note", host="sampler", text=f"sample failed: {exc}")
            if stop.wait(interval_s):  # sampling cadence
                break
    finally:
        sampler.close()


def start_ticker(threads: Threads, history: History, every_s: float = TICK_S) -> None:
    def tick() -> None:
        while not threads.stop.wait(every_s):  # the ticker's cadence
            history.append("tick", host="harness")

    threads.spawn("ticker", tick)
