"""procs.start_on_free_port: a server ready on its port is returned; one that exits at
start is tried again on another port, then refused with its log's tail; one that never
answers is stopped and refused."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from repro.harness import procs
from repro.harness.errors import ProvisionError

SERVE = "import socket,sys,time; s=socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1])));" \
        " s.listen(); print('listening', flush=True); time.sleep(60)"


def _popen(log: Path, code: str, port: int) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-c", code, str(port)], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _stop(p: subprocess.Popen[bytes]) -> None:
    p.kill()
    p.wait(timeout=10)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def test_a_ready_server_is_returned_with_its_port(tmp_path: Path) -> None:
    log = tmp_path / "log"
    proc, port = procs.start_on_free_port(lambda n: _popen(log, SERVE, n), _answers, _stop,
                                          what="server", log=log, timeout=30)
    try:
        assert proc.poll() is None and _answers(port)
    finally:
        _stop(proc)


def test_a_server_that_always_exits_is_tried_three_times(tmp_path: Path) -> None:
    log = tmp_path / "log"
    started: list[int] = []

    def start(n: int) -> subprocess.Popen[bytes]:
        started.append(n)
        return _popen(log, "print('bind: address in use'); raise SystemExit(1)", n)

    with pytest.raises(ProvisionError, match=r"server exited at start: .*address in use"):
        procs.start_on_free_port(start, _answers, _stop, what="server", log=log, timeout=30)
    assert len(started) == 3


def test_a_server_that_never_answers_is_stopped(tmp_path: Path) -> None:
    log = tmp_path / "log"
    procs_started: list[subprocess.Popen[bytes]] = []

    def start(n: int) -> subprocess.Popen[bytes]:
        procs_started.append(_popen(log, "import time; time.sleep(60)", n))
        return procs_started[-1]

    with pytest.raises(ProvisionError, match="server was not ready within 1 s"):
        procs.start_on_free_port(start, _answers, _stop, what="server", log=log, timeout=1)
    assert procs_started[0].poll() is not None
