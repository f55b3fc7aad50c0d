"""The interrupt handler raises in the harness's own code, never inside a library call.

Each case runs a small victim process (its own code is __main__) that installs the
handler, then is signalled from here; the victim reports where its KeyboardInterrupt
surfaced and whether the library's lock was left held.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from repro.harness import interrupts

ROOT = Path(__file__).resolve().parents[1]

VICTIM = r'''
import atexit, os, queue, sys, threading, time, traceback
from repro.harness import interrupts

mode = sys.argv[1]
interrupts.GRACE_S = float(os.environ.get("GRACE_S", "10"))
interrupts.EXIT_GRACE_S = 0.5
interrupts.install()
q = queue.LifoQueue()
q.put(object())

def where(exc):
    # raised by the handler's trace function, it has no entry for the frame it entered
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.endswith("interrupts.py")]
    if not frames or frames[-1].filename == __file__:
        return "own"
    return os.path.basename(frames[-1].filename)

def report(exc):
    print(f"caught {where(exc)} held={q.mutex.locked()} "
          f"args={exc.args} delivered={interrupts.delivered()}", flush=True)

if mode == "churn":  # what every docker SDK call does with its pool, over and over
    for _ in range(int(sys.argv[2])):
        try:
            print("ready", flush=True)
            while True:
                q.put(q.get())
        except KeyboardInterrupt as exc:
            report(exc)
            if q.empty():
                q.put(object())
elif mode == "blocked":  # library calls that each return after argv[2] s
    try:
        print("ready", flush=True)
        while True:
            try:
                queue.Queue().get(timeout=float(sys.argv[2]))
            except queue.Empty:
                pass
    except KeyboardInterrupt as exc:
        report(exc)
elif mode == "exit-hangs":  # an exit handler that never returns
    atexit.register(threading.Event().wait)
    try:
        print("ready", flush=True)
        while True:
            time.sleep(0.01)
    except KeyboardInterrupt:
        interrupts.watch_exit()
        print("exiting", flush=True)
'''


class Victim:
    """A victim process and its output lines, read with a deadline."""

    def __init__(self, tmp_path: Path, *args: str, grace_s: float = 10.0) -> None:
        script = tmp_path / "victim.py"
        script.write_text(VICTIM)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "GRACE_S": str(grace_s)}
        self.proc = subprocess.Popen(
            [sys.executable, str(script), *args], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=env)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def expect(self, prefix: str, timeout_s: float = 20.0) -> str:
        line = self.lines.get(timeout=timeout_s)
        assert line.startswith(prefix), line
        return line

    def signal(self, signum: int = signal.SIGINT) -> None:
        os.kill(self.proc.pid, signum)

    def finish(self, timeout_s: float = 20.0) -> tuple[int, str]:
        try:
            self.proc.wait(timeout=timeout_s)
        finally:
            self.proc.kill()
        assert self.proc.stderr is not None
        return self.proc.returncode, self.proc.stderr.read()


@pytest.fixture
def victims(tmp_path: Path):
    made: list[Victim] = []

    def make(*args: str, grace_s: float = 10.0) -> Victim:
        made.append(Victim(tmp_path, *args, grace_s=grace_s))
        return made[-1]

    yield make
    for victim in made:
        victim.proc.kill()
        victim.proc.wait(timeout=10)


def test_calling_into_names_the_library_the_harness_frame_called() -> None:
    assert interrupts.calling_into(sys._getframe()) is None  # this test is own code
    blocked = queue.Queue[int]()
    waiter = threading.Thread(target=lambda: blocked.get(timeout=10))
    waiter.start()
    try:
        deadline = time.monotonic() + 10
        while interrupts.calling_into(sys._current_frames().get(waiter.ident or 0)) != "queue":
            assert time.monotonic() < deadline, "the waiter never blocked in queue.get"
            time.sleep(0.01)
    finally:
        blocked.put(1)
        waiter.join(timeout=10)


def test_interrupts_never_leave_a_library_lock_held(victims) -> None:
    rounds = 100
    victim = victims("churn", str(rounds))
    for _ in range(rounds):
        victim.expect("ready")
        victim.signal()
        caught = victim.expect("caught")
        assert caught.startswith("caught own ") and "held=False" in caught, caught
    assert victim.finish()[0] == 0


def test_an_interrupt_waits_for_the_library_call_to_return(victims) -> None:
    victim = victims("blocked", "1.0")
    victim.expect("ready")
    time.sleep(0.2)  # let the victim enter its 1 s library call
    sent = time.monotonic()
    victim.signal()
    caught = victim.expect("caught")
    waited = time.monotonic() - sent
    assert caught.startswith("caught own "), caught
    assert "delivered=2" in caught and "args=()" in caught, caught
    assert waited < 2.0, f"{waited:.2f} s"


def test_a_library_call_that_outlasts_the_grace_is_interrupted_anyway(victims) -> None:
    victim = victims("blocked", "30", grace_s=0.5)
    victim.expect("ready")
    time.sleep(0.2)
    victim.signal(signal.SIGTERM)
    caught = victim.expect("caught", timeout_s=10)
    assert not caught.startswith("caught own "), caught  # raised inside the library
    assert "args=('signal 15',)" in caught and "delivered=15" in caught, caught


def test_a_second_interrupt_is_raised_at_once(victims) -> None:
    victim = victims("blocked", "30")
    victim.expect("ready")
    time.sleep(0.2)
    victim.signal()
    time.sleep(0.3)
    assert victim.lines.empty(), "the first interrupt was raised inside the library"
    victim.signal()
    caught = victim.expect("caught", timeout_s=5)
    assert not caught.startswith("caught own "), caught


def test_a_hung_exit_after_an_interrupt_is_ended(victims) -> None:
    victim = victims("exit-hangs")
    victim.expect("ready")
    victim.signal()
    victim.expect("exiting")
    status, stderr = victim.finish(timeout_s=10)
    assert status == 128 + signal.SIGINT
    assert "an exit handler hung" in stderr, stderr
