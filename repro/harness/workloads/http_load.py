"""Open-loop HTTP load against a service on the runner's loopback, with its health watched.

Model: one asyncio loop in a thread of its own. Request i is *due* at start + i/rate,
whatever happened to the ones before it (open loop: a service that stalls does not slow
the arrivals down, it piles them up), and its latency is counted from that due time,
so a late start shows. Each request is a fresh connection, `GET <path>` with
`Connection: close`, read to the end, given up after `timeout_s` (then failed, with
the timeout as its latency). Alongside, on the same loop:

  health   GET <health_path> every `health_interval_s` (timeout `health_timeout_s`):
           one `probe` event (host "caller", leg "health", ok, took_s, status)
  inflight requests sent and not yet answered, sampled every 0.25 s: a `series`
           event (panel "in_flight", name "requests")
  ticks    a `tick` every 50 ms that touches nothing: a gap between two of them is the
           harness itself not running (an overloaded machine), not the service

Every request is one `op` event at its due time: name "get", ok (status 200 and the
body `expect(i)` says), status, latency_s, error. `stop()` ends the arrivals, waits for
what is in flight (each bounded by its timeout) and closes the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from repro.harness.history import History

TICK_S = 0.05
INFLIGHT_EVERY_S = 0.25


@dataclass
class OpenLoop:
    history: History
    port: int
    rate: float
    path: Callable[[int], str]            # request i -> its path
    expect: Callable[[int], str] | None   # request i -> the body it must return (None: any)
    timeout_s: float = 5.0
    health_path: str = "/health"
    health_interval_s: float = 0.25
    health_timeout_s: float = 1.0
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    _stop: asyncio.Event | None = field(default=None, init=False)
    _ready: threading.Event = field(default_factory=threading.Event, init=False)
    in_flight: int = field(default=0, init=False)
    sent: int = field(default=0, init=False)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="open-loop", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(self.timeout_s + 10)

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._run())
        finally:
            loop.close()

    async def _run(self) -> None:
        self._stop = asyncio.Event()
        self._ready.set()
        side = [asyncio.create_task(c) for c in (self._health(), self._inflight(),
                                                  self._ticks())]
        pending: set[asyncio.Task[None]] = set()
        began = time.monotonic()
        i = 0
        while True:
            due = began + i / self.rate
            wait = due - time.monotonic()
            if wait > 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), wait)  # the arrival schedule
            if self._stop.is_set():
                break
            due_t = self.history.now() - max(0.0, time.monotonic() - due)
            task = asyncio.create_task(self._request(i, due_t, due))
            pending.add(task)
            task.add_done_callback(pending.discard)
            i += 1
        if pending:
            await asyncio.wait(pending, timeout=self.timeout_s + 2)
        for t in side:
            t.cancel()
        await asyncio.gather(*side, return_exceptions=True)

    async def _get(self, path: str, timeout: float) -> tuple[int, str]:
        async def exchange() -> tuple[int, str]:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            try:
                writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             "Connection: close\r\n\r\n".encode())
                await writer.drain()
                raw = await reader.read(-1)
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            head, _, body = raw.partition(b"\r\n\r\n")
            status_line = head.split(b"\r\n", 1)[0].split()
            status = int(status_line[1]) if len(status_line) > 1 else 0
            return status, body.decode(errors="replace")

        return await asyncio.wait_for(exchange(), timeout)

    async def _request(self, i: int, due_t: float, due: float) -> None:
        self.in_flight += 1
        self.sent += 1
        status, error, body = 0, "", ""
        try:
            status, body = await self._get(self.path(i), self.timeout_s - max(
                0.0, time.monotonic() - due))
        except TimeoutError:
            error = f"no answer within {self.timeout_s:g} s"
        except (OSError, ValueError, IndexError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        finally:
            self.in_flight -= 1
        latency = min(time.monotonic() - due, self.timeout_s) if error.startswith("no answer") \
            else time.monotonic() - due
        ok = status == 200 and (self.expect is None or body == self.expect(i))
        if status and not ok and not error:
            error = f"HTTP {status}: {body.strip()[:120]}"
        self.history.append("op", "caller", t=due_t, name="get", i=i, ok=ok, status=status,
                            latency_s=round(latency, 6), **({"error": error} if error else {}))

    async def _health(self) -> None:
        while True:
            t0 = self.history.now()
            began = time.monotonic()
            try:
                status, _ = await self._get(self.health_path, self.health_timeout_s)
                error = "" if status == 200 else f"HTTP {status}"
            except TimeoutError:
                status, error = 0, f"no answer within {self.health_timeout_s:g} s"
            except (OSError, ValueError, IndexError) as exc:
                status, error = 0, f"{type(exc).__name__}: {exc}"
            self.history.append("probe", "caller", t=t0, leg="health", ok=status == 200,
                                status=status, took_s=round(time.monotonic() - began, 4),
                                **({"error": error} if error else {}))
            await asyncio.sleep(max(0.0, self.health_interval_s - (time.monotonic() - began)))

    async def _inflight(self) -> None:
        while True:
            self.history.append("series", "caller", panel="in_flight", name="requests",
                                value=self.in_flight, unit="requests")
            await asyncio.sleep(INFLIGHT_EVERY_S)  # the sampler's cadence

    async def _ticks(self) -> None:
        while True:
            self.history.append("tick", "harness")
            await asyncio.sleep(TICK_S)  # the harness's own clock
