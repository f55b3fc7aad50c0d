"""The heartbeat's ssh leg against a real ssh server (paramiko's, on loopback) whose
session freezes where paramiko waits without a bound: the reply to a channel request.

The server answers `cat boot_id` until the test freezes it; from then on it holds every
exec request unanswered (as a stopped sshd does) until thawed. The leg must go on
sampling at its timeout's cadence, every sample failed, and answer again on the same
session once thawed: the frozen session is what it watches, never a fresh login.
"""

from __future__ import annotations

import time
from pathlib import Path

from repro.harness.checks import longest_silence
from repro.harness.history import Event, History
from repro.harness.hosts.sshhost import GRACE_S, SshAuth, SshCommander, SshEndpoint
from repro.harness.probes.heartbeat import Heartbeat, leg
from repro.harness.procs import eventually
from tests.sshd_stub import BOOT, FreezableSshd


def _ssh(history: History) -> list[Event]:
    return leg(history.events(), "ssh")


def test_a_session_frozen_at_its_channel_request_keeps_the_leg_sampling(
        sshd: tuple[FreezableSshd, int, Path]) -> None:
    server, port, key_path = sshd
    history = History()
    beat = Heartbeat(history, "h", "127.0.0.1", key_path, interval_s=0.1, ssh_timeout_s=0.4,
                     port=port)
    with beat:
        assert eventually(lambda: sum(e.get("ok") for e in _ssh(history)) >= 3, timeout=20), \
            _ssh(history)
        server.frozen.set()
        assert eventually(lambda: sum(not e.get("ok") for e in _ssh(history)) >= 4, timeout=10), \
            "the ssh leg stopped sampling while its session was frozen"
        server.thawed.set()
        n = len(_ssh(history))
        assert eventually(lambda: any(e.get("ok") for e in _ssh(history)[n:]), timeout=10)
    samples = _ssh(history)
    failed = [e for e in samples if not e.get("ok")]
    assert all(e.get("boot_id") is None for e in failed)
    assert longest_silence(samples) < 1.0, "a round went unsampled for longer than its timeout"
    assert server.logins == 1, "the leg logged in afresh instead of watching the frozen session"
    assert samples[-1].get("boot_id") == BOOT


def test_a_host_command_on_a_frozen_session_gives_up_at_its_deadline(
        sshd: tuple[FreezableSshd, int, Path]) -> None:
    server, port, key_path = sshd
    commander = SshCommander(SshEndpoint("127.0.0.1", port), SshAuth(key_path))
    code, out, _ = commander.execute("cat /proc/sys/kernel/random/boot_id", timeout=0.5)
    assert code == 0 and out.decode().strip() == BOOT, (code, out, _)
    server.frozen.set()
    started = time.monotonic()
    code, _, err = commander.execute("cat /proc/sys/kernel/random/boot_id", timeout=0.5)
    took = time.monotonic() - started
    assert code is None and b"never answered the command's request" in err, err
    assert took < 0.5 + GRACE_S + 2.0, f"a command on a frozen session took {took:.1f} s"
