"""Open-loop HTTP load from the runner (the observer), and the observer's own stalls.

Model: requests are sent on a fixed schedule, `rate` per second for `duration_s`, whatever
the service does (open loop: a slow service does not slow the offered load, as production
traffic does not wait for it), each on a fresh TCP connection (`GET /work`, HTTP/1.0,
`Connection: close`), each given `timeout_s` to answer 200. Every request is one `op`
event name=request: `ok`, `latency_s` (from the send to the end of the answer; the timeout
for one that was not answered), `sent_t`, `lag_s` (how late the generator sent it), `status`
or `error`. Then the generator waits for the last requests, at most `timeout_s`.

The rate is sized from the runner (`sized_rate`) unless the configuration fixes it: the
traffic pools sized from the runner's CPUs carried before the update, so that the verdict
does not depend on the runner's size (the incident's README).

The first `warmup_s` of the schedule warm the service up (class loading, the JIT: a
service behind a load balancer gets its warm-up too); those requests carry
`phase="warmup"` and the oracle leaves them out.

The observer watches itself: a ticker in the same event loop wakes every TICK_S; a wake-up
later than STALL_S is a stall of the observer (a loaded runner, a GC pause of the harness),
one `observer` event name=stall with its `start` and `end`. Requests in flight across a
stall were timed by a stalled clock, and requests sent late (`lag_s`) by a starved one: the
oracle excuses them from the latency verdict. The event loop runs in its own thread at a
raised priority (nice -10 where allowed), like the heartbeat's threads: the observer must
not be starved by the work it watches, nor by other work on the runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from dataclasses import dataclass

from repro.harness.history import History

TICK_S = 0.05
STALL_S = 0.3
REQUEST = b"GET /work HTTP/1.0\r\nHost: service\r\nConnection: close\r\n\r\n"


def sized_rate(runner_cpus: int, load: float, downstream_ms: float) -> float:
    """The requests per second offered to a service on a runner of `runner_cpus` CPUs:
    `load` of what pools sized from those CPUs carry (HikariCP's cores x 2 + 1 connections,
    each busy `downstream_ms` per request): the traffic the service carried before the
    update, on any runner. 2 CPUs, 0.7, 150 ms: 23.3 requests/s (pools of 1 CPU carry 20)."""
    return round(load * (2 * runner_cpus + 1) / (downstream_ms / 1000.0), 1)


@dataclass(frozen=True)
class Load:
    host: str        # the service host's name (the events' host)
    address: str
    port: int
    rate: float
    duration_s: float
    timeout_s: float
    warmup_s: float = 0.0


def drive(load: Load, history: History) -> int:
    """Offer the load (from a thread of raised priority); returns how many requests were
    sent."""
    sent: list[int] = []

    def run() -> None:
        with contextlib.suppress(OSError):  # nice is per thread on Linux; needs root
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), -10)
        sent.append(asyncio.run(_drive(load, history)))
    thread = threading.Thread(target=run, name="load-generator", daemon=True)
    thread.start()
    thread.join()
    if not sent:
        raise RuntimeError("the load generator ended without a count (see the log)")
    return sent[0]


async def _drive(load: Load, history: History) -> int:
    loop = asyncio.get_running_loop()
    ticker = asyncio.create_task(_watch_self(history, load.host))
    start = loop.time()
    warmup = round(load.rate * load.warmup_s)
    n = warmup + max(1, round(load.rate * load.duration_s))
    requests = []
    for i in range(n):
        due = start + i / load.rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        requests.append(asyncio.create_task(_request(
            load, history, loop.time() - due, "warmup" if i < warmup else "measure")))
    await asyncio.gather(*requests)
    ticker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ticker
    return n


async def _request(load: Load, history: History, lag_s: float, phase: str) -> None:
    sent = history.now()
    status, error = "", ""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(load.timeout_s):
            reader, writer = await asyncio.open_connection(load.address, load.port)
            writer.write(REQUEST)
            await writer.drain()
            line = await reader.readline()
            await reader.read()  # the rest of the answer, to the server's close
        parts = line.split()
        status = parts[1].decode(errors="replace") if len(parts) > 1 else "no answer"
    except TimeoutError:
        error = f"no answer within {load.timeout_s:g} s"
    except OSError as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        if writer is not None:
            writer.close()
    done = history.now()
    ok = status == "200"
    history.append("op", load.host, name="request", ok=ok,
                   latency_s=round(done - sent if ok else max(done - sent, load.timeout_s), 4),
                   sent_t=round(sent, 4), lag_s=round(max(0.0, lag_s), 4),
                   status=status, error=error, phase=phase)


async def _watch_self(history: History, host: str) -> None:
    loop = asyncio.get_running_loop()
    last = loop.time()
    while True:
        await asyncio.sleep(TICK_S)
        now = loop.time()
        if now - last > STALL_S:
            end = history.now()
            history.append("observer", host, name="stall", start=round(end - (now - last), 4),
                           end=round(end, 4))
        last = now
