"""The Docker backend's start-up choices and the readiness login, without Docker."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from repro.harness.errors import ProvisionError
from repro.harness.history import History
from repro.harness.hosts import docker as dh
from repro.harness.hosts import sshlogin
from repro.harness.probes.heartbeat import LOCAL_TCP_TIMEOUT_S, Heartbeat


def _dc(base_url: str) -> SimpleNamespace:
    return SimpleNamespace(api=SimpleNamespace(base_url=base_url))


def test_login_files_are_mounted_only_from_a_local_daemon_into_a_known_empty_home() -> None:
    local, remote = _dc("http+docker://localhost"), _dc("https://builder:2376")
    assert dh._can_mount_login(local, dh.BASE_IMAGE, {})  # type: ignore[arg-type]
    assert dh._can_mount_login(local, "repro-1234-good:latest",  # type: ignore[arg-type]
                               {"repro.image": "baked"})
    assert not dh._can_mount_login(local, "team/sshd:1", {})  # type: ignore[arg-type]
    assert not dh._can_mount_login(remote, dh.BASE_IMAGE, {})  # type: ignore[arg-type]


def test_login_dir_holds_the_runs_files_private(tmp_path: Path) -> None:
    key = SimpleNamespace(public_line="ssh-ed25519 AAAA repro-test", private_bytes=b"PRIVATE")
    run = SimpleNamespace(scratch=tmp_path, key=key)
    d = dh._write_login_dir(run, "a")  # type: ignore[arg-type]
    assert d == tmp_path / "login-a" and d.stat().st_mode & 0o777 == 0o700
    assert (d / "authorized_keys").read_text() == "ssh-ed25519 AAAA repro-test\n"
    assert (d / "id_ed25519").read_bytes() == b"PRIVATE"
    assert {p.name: p.stat().st_mode & 0o777 for p in d.iterdir()} == {
        "authorized_keys": 0o600, "id_ed25519": 0o600, "config": 0o600}
    assert dh._write_login_dir(run, "a") == d  # a second start of the role starts afresh


def test_heartbeat_tcp_timeout_is_tight_only_for_a_live_docker_host(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dh, "_LIVE", {"10.9.0.2"})
    beat = Heartbeat(History(), "h", "10.9.0.2", Path("/nonexistent"), interval_s=0.25)
    assert beat.tcp_timeout_s == LOCAL_TCP_TIMEOUT_S
    other = Heartbeat(History(), "h", "10.9.0.3", Path("/nonexistent"), interval_s=0.25)
    assert other.tcp_timeout_s == 0.5  # a QEMU guest, an existing machine: as before
    assert Heartbeat(History(), "h", "10.9.0.3", Path("/nonexistent"),
                     interval_s=1.0).tcp_timeout_s == 2.0
    asked = Heartbeat(History(), "h", "10.9.0.2", Path("/nonexistent"), tcp_timeout_s=0.3)
    assert asked.tcp_timeout_s == 0.3  # the caller's own bound wins


def test_quick_connection_has_no_nagle(tmp_path: Path) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    try:
        sock = sshlogin.quick_connection("127.0.0.1", server.getsockname()[1], 2.0)
        with sock:
            assert isinstance(sock, sshlogin.QuickAckSocket)
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            peer, _ = server.accept()
            with peer:
                peer.sendall(b"SSH-2.0-test\r\n")
                assert sock.recv(64) == b"SSH-2.0-test\r\n"
    finally:
        server.close()


def test_wait_for_login_polls_a_closed_port_fast_and_gives_up_with_the_reason() -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens: every connect is refused at once
    started = time.monotonic()
    with pytest.raises(ProvisionError, match="Connection refused"):
        sshlogin.wait_for_login("127.0.0.1", Path("/nonexistent"), 0.3, port, poll_s=0.005)
    assert 0.3 <= time.monotonic() - started < 2.0


def test_wait_for_login_retries_a_failed_login_at_the_slower_cadence() -> None:
    """A port that accepts and hangs up (sshd not ready to talk): each attempt is a real
    connection, retried LOGIN_RETRY_S apart however fast the poll."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[float] = []

    def serve() -> None:
        while True:
            try:
                peer, _ = server.accept()
            except OSError:
                return
            accepted.append(time.monotonic())
            peer.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        with pytest.raises(ProvisionError):
            sshlogin.wait_for_login("127.0.0.1", Path("/nonexistent"), 0.5,
                                    server.getsockname()[1], poll_s=0.001)
    finally:
        server.close()
    assert 2 <= len(accepted) <= 0.5 / sshlogin.LOGIN_RETRY_S + 1


def test_teardown_names_come_from_sparse_listings_too() -> None:
    sparse = SimpleNamespace(name=None, attrs={"Names": ["/repro-ab12-a"]})
    full = SimpleNamespace(name="repro-ab12-b", attrs={"Name": "/repro-ab12-b"})
    assert dh._listed_name(sparse) == "repro-ab12-a"  # type: ignore[arg-type]
    assert dh._listed_name(full) == "repro-ab12-b"  # type: ignore[arg-type]


def test_each_tries_every_item_then_raises_the_first_failure() -> None:
    done: list[int] = []

    def act(i: int) -> None:
        if i == 1:
            raise RuntimeError("one failed")
        time.sleep(0.01)
        done.append(i)

    with pytest.raises(RuntimeError, match="one failed"):
        dh._each(act, [0, 1, 2, 3])
    assert sorted(done) == [0, 2, 3]
    dh._each(act, [])  # nothing to do
