"""The pause and kill faults on real hosts and real runner processes.

- FreezeProcesses: a TCP server on the runner's loopback, frozen in the run's
  freezer cgroup, still completes the handshake (the kernel) but answers nothing;
  thawed, it answers again; a run that died with it frozen is thawed by the reaper.
- PauseHost (Docker): the container's sshd still accepts a TCP connect but sends no
  banner while paused; after heal it does.
- KillHost (Docker): the host stops answering; KillProcess: the process is gone.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from repro.harness.cleanup import live_runs
from repro.harness.faults import pause
from repro.harness.faults.base import injected
from repro.harness.faults.kill import KillHost, KillProcess, answers
from repro.harness.faults.pause import FreezeProcesses, PauseHost, StopProcessGroup
from repro.harness.history import History
from repro.harness.hosts.base import Host
from repro.harness.procs import free_port
from repro.harness.run import Run

HOSTS = ("docker", ["paused", "killed"])
ECHO = ("import socket,sys\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, "
        "socket.SO_REUSEADDR, 1)\ns.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(8)\n"
        "while True:\n c, _ = s.accept(); c.sendall(b'hello\\n'); c.close()\n")


def greeting(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bytes | None:
    """(connected, first bytes): None when the connect itself failed."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            try:
                return s.recv(64)
            except TimeoutError:
                return b""
    except OSError:
        return None


@pytest.fixture
def echo_server() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", ECHO, str(port)])
    from repro.harness.procs import wait_for
    wait_for(lambda: greeting(port), timeout=10)
    yield proc, port
    proc.kill()
    proc.wait(timeout=10)


def test_frozen_process_accepts_but_answers_nothing(run: Run, echo_server: tuple[
        subprocess.Popen[bytes], int]) -> None:
    proc, port = echo_server
    fault = FreezeProcesses(run, "echo", [proc.pid])
    history = History(None)
    with injected(fault, history) as applied:
        assert applied.effective, applied.shortfall
        assert applied.measured["tasks_frozen"] == 1
        assert greeting(port) == b"", "a frozen server's kernel completes the handshake, silent"
    assert not fault.cgroup.exists()
    assert greeting(port) == b"hello\n"


def test_the_reaper_thaws_a_dead_runs_freezer(run: Run, echo_server: tuple[
        subprocess.Popen[bytes], int]) -> None:
    proc, port = echo_server
    fault = FreezeProcesses(run, "orphan", [proc.pid])
    assert fault.inject().effective  # never healed: the run "died" here
    others = set(live_runs().values()) - {run.run_id}   # other runs' freezers are not ours
    assert fault.cgroup.name not in " ".join(pause.reap(False, others | {run.run_id}))
    assert pause.reap(False, others) == [f"freezer cgroup {fault.cgroup.name}"]
    assert not fault.cgroup.exists()
    assert greeting(port) == b"hello\n"


@pytest.mark.docker
def test_paused_container_accepts_tcp_but_sends_no_banner(hosts: dict[str, Host]) -> None:
    host = hosts["paused"]
    assert (greeting(22, host.address) or b"").startswith(b"SSH-")
    with injected(PauseHost(host), History(None)) as applied:
        assert applied.effective, applied.shortfall
        assert greeting(22, host.address) == b""
    assert (greeting(22, host.address, timeout=5) or b"").startswith(b"SSH-")


@pytest.mark.docker
def test_killed_process_and_host_are_gone(hosts: dict[str, Host]) -> None:
    host = hosts["killed"]
    pid = int(host.run("setsid sleep 600 >/dev/null 2>&1 < /dev/null & echo $!",
                       timeout=10).stdout)
    with injected(KillProcess(host, pid), History(None)) as applied:
        assert applied.effective, applied.shortfall
    assert answers(host.address)
    with injected(KillHost(host), History(None)) as applied:
        assert applied.effective, applied.shortfall
        assert applied.measured == {"answers_tcp": False}
    assert not answers(host.address)


@pytest.mark.docker
def test_a_stopped_process_group_is_stopped_then_continued(hosts: dict[str, Host]) -> None:
    host = hosts["paused"]
    pgid = int(host.run("setsid sh -c 'sleep 600 & sleep 600' >/dev/null 2>&1 < /dev/null & "
                        "echo $!", timeout=10).stdout)
    states = f"ps -eo pgid=,stat= | awk '$1 == {pgid} {{print $2}}'"
    with injected(StopProcessGroup(host, pgid), History(None)) as applied:
        assert applied.effective, applied.shortfall
        assert applied.measured["processes_stopped"] == 3
    assert not [s for s in host.run(states, timeout=10).stdout.split() if s.startswith("T")]
    host.run(f"kill -KILL -{pgid}", timeout=10)


@pytest.mark.qemu
def test_a_paused_guest_answers_nothing_not_even_tcp_and_a_killed_one_is_gone(run: Run) -> None:
    from repro.harness.hosts import open_hosts
    with open_hosts("qemu", run, ["guest"]) as hs:
        guest = hs["guest"]
        with injected(PauseHost(guest), History(None)) as applied:
            assert applied.effective and applied.measured == {"state": "T"}, applied
            assert greeting(22, guest.address, timeout=2) is None  # its kernel is stopped too
        assert (greeting(22, guest.address, timeout=10) or b"").startswith(b"SSH-")
        with injected(KillHost(guest), History(None)) as applied:
            assert applied.effective, applied.shortfall
        assert not answers(guest.address)
