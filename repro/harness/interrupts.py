"""Interrupts (Ctrl-C, SIGTERM, SIGHUP) that stop a run without breaking its libraries.

Model. Python raises KeyboardInterrupt wherever the main thread happens to be. Raised
inside a library it can leave that library's lock held: `with lock:` is not atomic
against it. Seen in CI: a Ctrl-C'd run removed every host, then deadlocked at exit in
urllib3's pool finalizer, on the docker SDK's connection-pool queue lock the interrupt had
left held. So the handler raises only where it is safe:

- In the harness's own code (repro.*, its tests), pytest's, and when the harness is
  calling `subprocess` (which kills its child and re-raises on purpose): at once.
- When the harness's innermost frame is calling into any other module (the docker SDK,
  urllib3, paramiko, queue, threading, socket...), the interrupt is *pending*: a trace
  function (the way pdb stops a running program) raises it at the first instruction the
  harness runs once that call has returned or raised. Every such call has a timeout,
  so the wait is bounded; GRACE_S after the signal a timer thread sends the same signal
  to the main thread again, which raises it anyway, and so does a second signal at once.

Scope. The handlers are the process's only while reproductions run: `install()` (the
plugin calls it at the first reproduction's start, or when a Run starts) keeps the
handlers it replaces and `uninstall()` (at the session's end) puts them back. SIGALRM is
never taken (pytest-timeout's signal method and a user's test own it): the grace is a
thread's timer, not an interval timer.

After an interrupt, exit itself is watched (`watch_exit`): a process still alive
EXIT_GRACE_S after its run ended (a library's exit handler hung) says so on one line
and ends with os._exit, its status 128 + the signal.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import threading
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

GRACE_S = 10.0
EXIT_GRACE_S = 20.0
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
OWN_CODE = frozenset({"repro", "tests", "conftest", "_pytest", "pytest", "pluggy", "__main__"})
INTERRUPTIBLE = frozenset({"subprocess"})

Tracer = Any  # sys.settrace's callable (typeshed's TraceFunction is private)


@dataclass
class Pending:
    signum: int
    previous_trace: Tracer  # whatever sys.gettrace() was: restored once raised


@dataclass
class _State:
    pending: Pending | None = None
    delivered: int | None = None  # the signal of the last KeyboardInterrupt raised
    previous: dict[int, Any] = field(default_factory=dict)  # installed: what it replaced
    grace: _Grace | None = None  # sends the pending signal again at GRACE_S


_STATE = _State()


def install() -> bool:
    """Route SIGINT, SIGTERM and SIGHUP through the handler, keeping the handlers they had;
    True when this call installed it (already installed, or not the main thread, where
    signal.signal must be called: False, nothing changes). Whoever installed uninstalls."""
    if _STATE.previous or threading.current_thread() is not threading.main_thread():
        return False
    _STATE.grace = _STATE.grace or _Grace()
    for sig in SIGNALS:
        _STATE.previous[sig] = signal.signal(sig, _on_signal)
    return True


def uninstall() -> None:
    """Give SIGINT, SIGTERM and SIGHUP back the handlers install() found (not installed:
    nothing changes); the grace timer's thread ends."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, previous in _STATE.previous.items():
        signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
    _STATE.previous.clear()
    if _STATE.grace is not None:
        _STATE.grace.stop()
        _STATE.grace = None


def installed() -> bool:
    return bool(_STATE.previous)


def delivered() -> int | None:
    """The signal whose KeyboardInterrupt this process raised, if one was."""
    return _STATE.delivered


def _is_own(frame: FrameType) -> bool:
    return str(frame.f_globals.get("__name__", "")).partition(".")[0] in OWN_CODE


def calling_into(frame: FrameType | None) -> str | None:
    """The top-level module the harness's innermost frame has called into; None when that
    frame is the innermost one (the thread runs harness code) or there is none."""
    entry = None
    while frame is not None and not _is_own(frame):
        entry = str(frame.f_globals.get("__name__", "")).partition(".")[0]
        frame = frame.f_back
    return entry if frame is not None else None


def _on_signal(signum: int, frame: FrameType | None) -> None:
    pending = _STATE.pending
    if pending is not None:  # pressed again (or the grace is over): the user insists
        _raise(signum)
    entry = calling_into(frame)
    if entry is None or entry in INTERRUPTIBLE:
        _raise(signum)
    _STATE.pending = Pending(signum, sys.gettrace())
    if _STATE.grace is not None:
        _STATE.grace.tell(signum)
    while frame is not None:  # every harness frame raises at its next instruction
        if _is_own(frame):
            frame.f_trace, frame.f_trace_opcodes = _in_own_frame, True
        frame = frame.f_back
    sys.settrace(_on_call)


class _Grace:
    """The grace timer: a thread started at install() (never in a signal handler: a thread's
    start takes threading's own locks, which the interrupted code may hold), told through a
    pipe (os.write takes no Python lock) that a signal is pending (its number) or no longer
    (DISARM); GRACE_S after a pending signal it sends that signal to the main thread again,
    unless it was raised meanwhile."""

    DISARM, STOP = 0, 255

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.write_fd, False)
        self.main = threading.main_thread().ident
        self.thread = threading.Thread(target=self._loop, name="repro-interrupt-grace",
                                       daemon=True)
        self.thread.start()

    def tell(self, code: int) -> None:
        with contextlib.suppress(OSError):  # a full pipe: the thread is behind, not gone
            os.write(self.write_fd, bytes([code]))

    def stop(self) -> None:
        self.tell(self.STOP)
        self.thread.join(timeout=5)
        for fd in (self.read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _next(self, timeout: float | None) -> int | None:
        """The next code, or None when `timeout` passed first."""
        ready, _, _ = select.select([self.read_fd], [], [], timeout)
        return os.read(self.read_fd, 1)[0] if ready else None

    def _loop(self) -> None:
        armed: int | None = None
        while True:
            code = self._next(GRACE_S if armed else None)
            if code is None:  # the grace is over
                pending = _STATE.pending
                if armed and pending is not None and pending.signum == armed and self.main:
                    signal.pthread_kill(self.main, armed)
                armed = None
            elif code == self.STOP:
                return
            else:
                armed = code or None


def _on_call(frame: FrameType, event: str, arg: object) -> Tracer:
    """Global trace function: a library calling back into harness code is harness code."""
    if _STATE.pending is not None and _is_own(frame):
        _raise(_STATE.pending.signum)
    return None


def _in_own_frame(frame: FrameType, event: str, arg: object) -> Tracer:
    if _STATE.pending is not None and event != "return":
        _raise(_STATE.pending.signum)
    return None if _STATE.pending is None else _in_own_frame


def _raise(signum: int) -> None:
    if _STATE.grace is not None and _STATE.pending is not None:
        _STATE.grace.tell(_Grace.DISARM)
    if _STATE.pending is not None:
        sys.settrace(_STATE.pending.previous_trace)
    _STATE.pending = None
    _STATE.delivered = signum
    raise KeyboardInterrupt() if signum == signal.SIGINT else KeyboardInterrupt(
        f"signal {signum}")


def watch_exit() -> None:
    """After an interrupted run: end the process if it has not exited EXIT_GRACE_S from now."""
    signum = _STATE.delivered
    if signum is None:
        return

    def force() -> None:
        print(f"repro: the interrupted run ended but the process had not exited "
              f"{EXIT_GRACE_S:.0f} s later (an exit handler hung); exiting now",
              file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(128 + signum)

    timer = threading.Timer(EXIT_GRACE_S, force)
    timer.daemon = True
    timer.start()
