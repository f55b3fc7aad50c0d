"""The ssh backend (existing machines): the [hosts] table, what it runs on a machine
(claim, watchdog, restore: run here with sh on scratch files), the ledger and its reaper,
and, with the run's own Docker containers standing in as existing machines, mtu_wedge
both ways over ssh:// with nothing of the harness left on them and the machines kept."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from repro.harness.checks import Outcome
from repro.harness.config import FIXTURES
from repro.harness.errors import ConfigError, ProvisionError
from repro.harness.hosts import ssh, ssh_remote
from repro.harness.hosts.base import Host, get_provider, parse_provider, ssh_command
from repro.harness.hosts.sshhost import SshEndpoint, wrap
from repro.harness.run import Run, start_run
from tests.leftovers import leftovers

WHERE = "my.toml"
ROLES = {"target": "root@10.1.2.3:22", "client": "root@10.1.2.4"}


def table(**extra: Any) -> dict[str, Any]:
    return {"roles": dict(ROLES)} | extra


def config_error(tbl: dict[str, Any], base: Path) -> str:
    with pytest.raises(ConfigError) as info:
        ssh.validate_hosts_table(tbl, WHERE, base)
    message = str(info.value)
    assert "\n" not in message
    return message


# ---- the [hosts] table --------------------------------------------------------------------
@pytest.mark.parametrize(("text", "want"), [
    ("root@10.1.2.3:22", SshEndpoint("10.1.2.3", 22, "root")),
    ("10.1.2.3", SshEndpoint("10.1.2.3", 22, "root")),
    ("deploy@staging-1.example.com:2222", SshEndpoint("staging-1.example.com", 2222, "deploy")),
    ("ssh://ops@10.0.0.9:2200", SshEndpoint("10.0.0.9", 2200, "ops")),
    ("root@[fd00::5]:22", SshEndpoint("fd00::5", 22, "root")),
])
def test_a_destination_is_user_at_host_colon_port_with_root_and_22_by_default(
        text: str, want: SshEndpoint) -> None:
    assert ssh.parse_destination(text) == want


@pytest.mark.parametrize("text", ["", "root@", "root@host:0", "root@host:70000", "a b",
                                  "root@host:", "root@-host", "user@host:22/x", 22])
def test_a_malformed_destination_is_one_line_naming_the_role(text: object) -> None:
    with pytest.raises(ConfigError, match=r"^my.toml:hosts.roles.target: not a machine"):
        ssh.parse_destination(text, WHERE, "hosts.roles.target")


def test_a_good_table_parses_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "id"
    path.parent.mkdir()
    _write_key(path)
    (tmp_path / "known").write_text("")
    parsed = ssh.parse_hosts_table(table(key="keys/id", known_hosts="known", lease_s=30,
                                         connect_timeout_s=5), WHERE, tmp_path)
    assert parsed.roles["client"] == SshEndpoint("10.1.2.4")
    assert parsed.key == path and parsed.known_hosts == tmp_path / "known"
    assert (parsed.lease_s, parsed.connect_timeout_s, parsed.where) == (30.0, 5.0, WHERE)
    assert parsed.auth().key_path == path and not parsed.auth().user_known_hosts


def _write_key(path: Path, password: str | None = None) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    enc = (serialization.BestAvailableEncryption(password.encode()) if password
           else serialization.NoEncryption())
    path.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, enc))
    path.chmod(0o600)


@pytest.mark.parametrize(("tbl", "key", "says"), [
    ({"roles": ROLES, "port": 22}, "hosts.port", "unknown key"),
    ({}, "hosts.roles", "needs a table [hosts.roles]"),
    ({"roles": {}}, "hosts.roles", "needs a table [hosts.roles]"),
    ({"roles": "root@h"}, "hosts.roles", "needs a table [hosts.roles]"),
    ({"roles": {"Target": "root@h"}}, "hosts.roles.Target", "lower-case name"),
    ({"roles": {"target": "root@h:99999"}}, "hosts.roles.target", "not a machine"),
    ({"roles": {"target": "root@h", "client": "deploy@h:22"}}, "hosts.roles.client",
     "already role 'target'"),
    (table(lease_s=5), "hosts.lease_s", "from 10 to 3600"),
    (table(lease_s=True), "hosts.lease_s", "got True"),
    (table(connect_timeout_s="10"), "hosts.connect_timeout_s", "got '10'"),
    (table(connect_timeout_s=float("nan")), "hosts.connect_timeout_s", "got nan"),
    (table(key="missing/id"), "hosts.key", "file not found"),
    (table(key=""), "hosts.key", "expected a path"),
    (table(known_hosts="nowhere"), "hosts.known_hosts", "file not found"),
])
def test_every_bad_table_is_one_line_naming_the_file_and_the_key(
        tbl: dict[str, Any], key: str, says: str, tmp_path: Path) -> None:
    message = config_error(tbl, tmp_path)
    assert message.startswith(f"{WHERE}:{key}: ") and says in message


def test_a_key_that_is_no_private_key_or_is_encrypted_is_refused(tmp_path: Path) -> None:
    (tmp_path / "id.pub").write_text("ssh-ed25519 AAAAC3 not-private\n")
    assert "not a private key" in config_error(table(key="id.pub"), tmp_path)
    (tmp_path / "folder").mkdir()
    assert "not a regular file" in config_error(table(key="folder"), tmp_path)
    _write_key(tmp_path / "locked", password="secret")
    assert "load it into ssh-agent" in config_error(table(key="locked"), tmp_path)


def test_a_key_under_the_home_directory_is_found_with_a_tilde(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ssh").mkdir()
    _write_key(tmp_path / ".ssh" / "id_ed25519")
    parsed = ssh.parse_hosts_table(table(key="~/.ssh/id_ed25519"), WHERE, Path("/nonexistent"))
    assert parsed.key == tmp_path / ".ssh" / "id_ed25519"


def test_provider_ssh_needs_the_table_and_a_machine_for_every_role(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ssh, "_CONFIGURED", None)
    assert parse_provider("ssh") == ("ssh", "")
    with pytest.raises(ValueError, match="takes no image"):
        parse_provider("ssh:somewhere")
    with pytest.raises(ConfigError, match=r"^hosts: provider 'ssh' needs a \[hosts\] table"):
        get_provider("ssh")
    ssh.configure({"roles": {"target": "root@10.1.2.3"}}, tmp_path, WHERE)
    provider = get_provider("ssh")
    run = start_run(tmp_path / "reports")
    try:
        with pytest.raises(ConfigError, match=r"^my.toml:hosts.roles.client: no machine for "
                                              r"role 'client'"), \
                provider.hosts(run, ["target", "client"]):
            pass
    finally:
        run.close()
    ssh.configure(None, tmp_path)
    assert ssh._CONFIGURED is None


def test_an_unreachable_machine_is_one_line_and_nothing_is_recorded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ssh, "LEDGER", tmp_path / "ledger")
    port = _closed_port()
    tbl = ssh.parse_hosts_table({"roles": {"target": f"root@127.0.0.1:{port}"},
                                 "connect_timeout_s": 2}, WHERE, tmp_path)
    run = start_run(tmp_path / "reports")
    try:
        with pytest.raises(ProvisionError) as info, ssh.SshProvider(tbl).hosts(run, ["target"]):
            pass
    finally:
        run.close()
    assert str(info.value) == f"cannot reach root@127.0.0.1:{port}: connection refused"
    assert not (tmp_path / "ledger").exists()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- how hosts reach each other and how commands are wrapped --------------------------------
def _ssh_host(tmp_path: Path, user: str = "root", port: int = 22) -> ssh.SshHost:
    tbl = ssh.HostsTable({"target": SshEndpoint("10.0.0.3", port, user)})
    return ssh.SshHost("repro-abcd-target", "target", SshEndpoint("10.0.0.3", port, user), tbl,
                       "20250101-000000-abcd", tmp_path / "id", "ssh-ed25519 AAAA repro-abcd",
                       address="10.0.0.3")


def test_hosts_of_a_run_log_in_to_each_other_with_the_words_each_backend_gives(
        tmp_path: Path) -> None:
    created = cast(Host, SimpleNamespace(address="172.18.0.2", name="repro-abcd-target"))
    assert ssh_command(created, created, "-o ConnectTimeout=10") == \
        "ssh -o ConnectTimeout=10 172.18.0.2"
    borrowed = cast(Host, _ssh_host(tmp_path, "deploy", 2222))
    assert ssh_command(borrowed, borrowed, "-o ConnectTimeout=10") == (
        "ssh -o ConnectTimeout=10 -F /tmp/repro-abcd-ssh/ssh_config -p 2222 deploy@10.0.0.3")
    assert borrowed.url() == "ssh://deploy@10.0.0.3:2222" and borrowed.console() is None


def test_commands_are_bounded_on_the_host_and_root_s_through_sudo_for_another_user() -> None:
    assert wrap("id -u", 5, {"A": "x y"}) == \
        "timeout -k 2 5.000 sh -c 'export A='\"'\"'x y'\"'\"'; id -u'"
    assert wrap("id -u", 5, sudo=True).startswith("sudo -n timeout -k 2 5.000 sh -c ")


def test_a_put_outside_the_scratch_dir_is_noted_and_one_inside_is_not(tmp_path: Path) -> None:
    host = _ssh_host(tmp_path)
    assert "manifest" in host._put_command("/tmp/repro-host-init.sh", 0o755)
    assert "manifest" not in host._put_command("/tmp/repro-abcd-ssh/stream.sh", 0o755)
    with pytest.raises(ValueError):
        host._put_command("relative/path", 0o644)


# ---- the scripts on the machine, run here with sh on scratch files only --------------------
SHORT = "test"  # not hex: no run's nft table, interface or directory has it


@pytest.fixture(scope="module")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """nft, tc and ip that print nothing: the scripts run here never see this machine's
    network state, let alone change it."""
    d = tmp_path_factory.mktemp("no-net-tools")
    for tool in ("nft", "tc", "ip"):
        (d / tool).write_text("#!/bin/sh\nexit 0\n")
        (d / tool).chmod(0o755)
    return d


def sh_with(stubs: Path, script: str, *args: str, timeout: float = 20
            ) -> subprocess.CompletedProcess[str]:
    """The script under this machine's sh, with the network tools stubbed out."""
    env = os.environ | {"PATH": f"{stubs}:{os.environ['PATH']}"}
    return subprocess.run(["sh", "-s", *args], input=script, text=True, capture_output=True,
                          timeout=timeout, check=False, env=env)


@pytest.fixture
def machine(tmp_path: Path, stubs: Path) -> Iterator[SimpleNamespace]:
    d = tmp_path / f"repro-{SHORT}-ssh"
    home = tmp_path / "home"
    home.mkdir()
    m = SimpleNamespace(d=d, home=home, ak=home / ".ssh" / "authorized_keys",
                        line=f"ssh-ed25519 AAAAC3run repro-{SHORT}", watchdogs=[],
                        sh=functools.partial(sh_with, stubs))
    yield m
    for pid in m.watchdogs:  # a test that failed half-way leaves no watchdog behind
        if watchdog_alive(pid, d):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def watchdog_alive(pid: int, d: Path) -> bool:
    try:
        return f"{d}/watchdog.sh" in Path(f"/proc/{pid}/cmdline").read_bytes().decode()
    except (FileNotFoundError, ProcessLookupError):
        return False


def start_watchdog(m: SimpleNamespace) -> int:
    assert m.sh(ssh_remote.start_watchdog(str(m.d))).returncode == 0
    pid = int((m.d / "watchdog.pid").read_text())
    m.watchdogs.append(pid)
    return pid


def restore(m: SimpleNamespace, *args: str) -> subprocess.CompletedProcess[str]:
    return m.sh(ssh_remote.restore_script(str(m.d), SHORT, m.line, str(m.ak)), *args)


def test_restore_removes_new_files_puts_back_overwritten_ones_and_only_the_run_s_key(
        machine: SimpleNamespace, tmp_path: Path) -> None:
    m = machine
    assert m.sh(ssh_remote.claim_script(str(m.d), SHORT, "run x", 60)).returncode == 0
    kept = tmp_path / "etc" / "kept.conf"
    kept.parent.mkdir()
    kept.write_text("original\n")
    kept.chmod(0o640)
    new = tmp_path / "new-dir" / "sub" / "file"
    for path in (kept, new, kept):  # a second put of the same file is noted once
        put = ssh_remote.record_put(str(m.d), str(path)) + \
            f"mkdir -p {path.parent} && echo harness > {path}"
        assert m.sh(put).returncode == 0, put
    capture = tmp_path / f"repro-{SHORT}-cap-x.pcap"  # named for the run beside its directory
    capture.write_text("pcap")
    others = tmp_path / "repro-beef-cap-x.pcap"  # another run's
    others.write_text("pcap")
    (m.home / ".ssh").mkdir(mode=0o700)
    m.ak.write_text("ssh-rsa AAAAB3user me@laptop")  # no newline at its end
    key = subprocess.run(["sh", "-c", ssh_remote.install_key(m.line)], text=True, timeout=10,
                         capture_output=True, env=os.environ | {"HOME": str(m.home)}, check=True)
    assert key.stdout.split() == [str(m.ak)]  # it created neither ~/.ssh nor the file
    assert m.ak.read_text() == f"ssh-rsa AAAAB3user me@laptop\n{m.line}\n"
    out = restore(m)
    assert out.returncode == 0, out.stderr
    assert kept.read_text() == "original\n" and kept.stat().st_mode & 0o777 == 0o640
    assert not (tmp_path / "new-dir").exists() and not m.d.exists()
    assert not capture.exists() and others.exists()
    assert m.ak.read_text() == "ssh-rsa AAAAB3user me@laptop\n"
    assert "removed the run's key" in out.stdout
    again = restore(m)  # idempotent, also without the directory
    assert again.returncode == 0 and again.stdout == ""


def test_what_the_run_created_for_its_key_goes_with_it(machine: SimpleNamespace) -> None:
    m = machine
    assert m.sh(ssh_remote.claim_script(str(m.d), SHORT, "run x", 60)).returncode == 0
    key = subprocess.run(["sh", "-c", ssh_remote.install_key(m.line)], text=True, timeout=10,
                         capture_output=True, env=os.environ | {"HOME": str(m.home)}, check=True)
    assert key.stdout.split() == ["sshdir", "akfile", str(m.ak)]
    for flag in ("sshdir", "akfile"):
        (m.d / f"{flag}.created").touch()
    assert restore(m).returncode == 0
    assert not (m.home / ".ssh").exists()


def test_without_its_directory_restore_still_removes_the_run_s_key_line(
        machine: SimpleNamespace) -> None:
    m = machine
    m.ak.parent.mkdir()
    m.ak.write_text(f"{m.line}\nssh-ed25519 AAAAC3other repro-beef\n")
    out = restore(m)
    assert out.returncode == 0 and m.ak.read_text() == "ssh-ed25519 AAAAC3other repro-beef\n"


def test_a_machine_held_by_another_live_run_is_refused_and_a_dead_run_s_is_restored(
        machine: SimpleNamespace, tmp_path: Path) -> None:
    m = machine
    other = tmp_path / "repro-beef-ssh"
    other.mkdir()
    (other / "owner").write_text("run 20250101-000000-beef from ci-7 pid 42\n")
    (other / "lease_s").write_text("60\n")
    (other / "lease").touch()
    (other / "restore.sh").write_text(f"rm -rf {other}\n")
    busy = m.sh(ssh_remote.claim_script(str(m.d), SHORT, "run x", 60))
    assert busy.returncode == ssh_remote.BUSY_EXIT
    assert busy.stdout.startswith("run 20250101-000000-beef from ci-7 pid 42, lease renewed ")
    old = time.time() - 3600
    os.utime(other / "lease", (old, old))
    stale = m.sh(ssh_remote.claim_script(str(m.d), SHORT, "run x", 60))
    assert stale.returncode == 0 and f"restored {other}" in stale.stdout
    assert not other.exists()
    assert {p.name for p in m.d.iterdir()} >= {"owner", "lease", "lease_s", "baseline.mtu"}


def test_the_watchdog_restores_the_machine_once_the_lease_runs_out(
        machine: SimpleNamespace) -> None:
    m = machine
    assert m.sh(ssh_remote.claim_script(str(m.d), SHORT, "run x", 1)).returncode == 0
    marker = m.d.parent / "restored-by"
    (m.d / "restore.sh").write_text(f'echo "$1" > {marker}; rm -rf {m.d}\n')
    (m.d / "watchdog.sh").write_text(ssh_remote.watchdog_script(str(m.d), 1))
    start_watchdog(m)
    deadline = time.monotonic() + 15
    # restore.sh writes the marker, then removes the folder: wait for both, not the first
    while (not marker.exists() or m.d.exists()) and time.monotonic() < deadline:
        time.sleep(0.1)  # condition poll: the watchdog's lease is 1 s
    assert marker.read_text() == "watchdog\n" and not m.d.exists()


def test_the_watchdog_leaves_when_the_runner_restored_the_machine_itself(
        machine: SimpleNamespace) -> None:
    m = machine
    assert m.sh(ssh_remote.claim_script(str(m.d), SHORT, "run x", 60)).returncode == 0
    (m.d / "restore.sh").write_text(ssh_remote.restore_script(str(m.d), SHORT, m.line, str(m.ak)))
    (m.d / "watchdog.sh").write_text(ssh_remote.watchdog_script(str(m.d), 60))
    pid = start_watchdog(m)
    assert restore(m).returncode == 0
    deadline = time.monotonic() + 10
    while watchdog_alive(pid, m.d) and time.monotonic() < deadline:
        time.sleep(0.05)  # condition poll: the watchdog was killed
    assert not watchdog_alive(pid, m.d)


# ---- the ledger and the reaper ---------------------------------------------------------------
def _entry(run_id: str, port: int) -> ssh.Touched:
    return ssh.Touched(run_id, "root", "127.0.0.1", port, None, None, 1.0,
                       "/tmp/repro-dead-ssh", "ssh-ed25519 AAAA repro-dead",
                       "/root/.ssh/authorized_keys")


def test_the_reaper_keeps_unreachable_machines_of_dead_runs_and_skips_live_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ssh, "LEDGER", tmp_path / "ledger")
    port = _closed_port()
    dead, live = "20250101-000000-dead", "20250101-000000-11ve"
    for run_id in (dead, live):
        ssh._ledger_update(run_id, SshEndpoint("127.0.0.1", port), _entry(run_id, port))
    assert ssh.reap(False, {live}) == []  # the dead run's machine does not answer: kept
    assert {p.stem for p in (tmp_path / "ledger").glob("*.json")} == {dead, live}
    ssh._ledger_update(dead, SshEndpoint("127.0.0.1", port), None)
    ssh._ledger_update(live, SshEndpoint("127.0.0.1", port), None)
    assert not (tmp_path / "ledger").exists()


# ---- Docker containers standing in as existing machines --------------------------------------
HOSTS = ("docker", ["target", "client"])


@pytest.fixture
def over_ssh(hosts: dict[str, Host], run: Run, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    """A second run whose provider ssh addresses the containers by user@address:22, logging
    in with the first run's key (the one they trust, as a user's key would be)."""
    tbl = ssh.parse_hosts_table({
        "key": str(run.key.private_path), "lease_s": 15, "connect_timeout_s": 5,
        "roles": {role: f"root@{h.address}:22" for role, h in hosts.items()}}, WHERE, tmp_path)
    monkeypatch.setattr(ssh, "_CONFIGURED", tbl)
    monkeypatch.setattr(ssh, "LEDGER", tmp_path / "ledger")
    inner = start_run(tmp_path / "reports")
    yield inner
    inner.close()
    assert not (tmp_path / "ledger").exists()
    assert leftovers(inner.short) == []


def _harness_on(host: Host, short: str) -> str:
    """What of the harness is on a stand-in machine (read through docker exec)."""
    res = host.run("nft list tables | grep repro; ls -d /tmp/repro-* 2>/dev/null; "
                   f"grep -h 'repro-{short}' /root/.ssh/authorized_keys; "
                   "tc qdisc show dev eth0 root | grep -v noqueue; "
                   "[ \"$(cat /sys/class/net/eth0/mtu)\" = 1500 ] || echo mtu changed; true",
                   timeout=20)
    return res.stdout.strip()


def _judged(inner: Run, prefix: bool) -> Any:
    from repro.mtu_wedge import scenario
    from repro.mtu_wedge.config import MtuWedgeConfig
    script = "prefix.sh" if prefix else "fixed.sh"
    cfg = replace(MtuWedgeConfig(), host_init=FIXTURES / "mtu_wedge" / script, provider="ssh")
    expect = Outcome.FAIL if prefix else Outcome.PASS
    result = scenario.run(inner, cfg, f"{script} over ssh", expect)
    if result.verdict.outcome is Outcome.INCONCLUSIVE:  # as the plugin's judged(): once more
        result = scenario.run(inner, cfg, f"{script} over ssh (attempt 2)", expect)
    return result


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("prefix", [False, True], ids=["fixed-passes", "prefix-is-flagged"])
def test_mtu_wedge_over_ssh_on_existing_machines_leaves_them_as_they_were(
        hosts: dict[str, Host], over_ssh: Run, prefix: bool) -> None:
    result = _judged(over_ssh, prefix)
    want = Outcome.FAIL if prefix else Outcome.PASS
    assert result.verdict.outcome is want, result.verdict.describe()
    assert result.provider == "ssh"
    for host in hosts.values():
        assert _harness_on(host, over_ssh.short) == "", host.name
        container = host.container  # type: ignore[attr-defined]  # a DockerHost
        container.reload()
        assert container.status == "running"  # the backend never removes a machine
    logs = sorted(p.name for p in (over_ssh.reports / "hosts").glob("*.restore.log"))
    assert logs == [f"{over_ssh.name(role)}.restore.log" for role in ("client", "target")]
    if prefix:  # the target was cut off: its own watchdog restored it
        target_log = (over_ssh.reports / "hosts" / f"{over_ssh.name('target')}.restore.log")
        assert "watchdog had restored it" in target_log.read_text()


def _stand_in_table(hosts: dict[str, Host], run: Run, base: Path) -> ssh.HostsTable:
    return ssh.parse_hosts_table({
        "key": str(run.key.private_path), "lease_s": 15, "connect_timeout_s": 5,
        "roles": {role: f"root@{h.address}:22" for role, h in hosts.items()}}, WHERE, base)


MESS = ("nft add table inet repro_{short}_x; ip link set dev eth0 mtu 1400; "
        "echo 1 > {scratch}/mine")


@pytest.mark.docker
def test_ctrl_c_inside_the_run_restores_the_machine(hosts: dict[str, Host], run: Run,
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ssh, "LEDGER", tmp_path / "ledger")
    inner = start_run(tmp_path / "reports")
    try:
        with pytest.raises(KeyboardInterrupt), \
                ssh.SshProvider(_stand_in_table(hosts, run, tmp_path)).hosts(
                    inner, ["target"]) as borrowed:
            target = borrowed["target"]
            target.run(MESS.format(short=inner.short, scratch=ssh_remote.scratch_dir(
                inner.short)), timeout=10)
            assert _harness_on(hosts["target"], inner.short) != ""
            raise KeyboardInterrupt
    finally:
        inner.close()
    assert _harness_on(hosts["target"], inner.short) == ""
    assert not (tmp_path / "ledger").exists()


DEAD_RUNNER = """
import sys, time
from pathlib import Path
from repro.harness.hosts import ssh
from repro.harness.run import start_run
ssh.LEDGER = Path(sys.argv[1])
table = ssh.parse_hosts_table({"key": sys.argv[2], "lease_s": 60,
                               "roles": {"target": sys.argv[3]}}, "t.toml", Path("."))
run = start_run(Path(sys.argv[4]))
with ssh.SshProvider(table).hosts(run, ["target"]) as hosts:
    hosts["target"].run(sys.argv[5].format(short=run.short, scratch=hosts["target"].scratch_dir),
                        timeout=10)
    print(run.run_id, flush=True)
    time.sleep(600)  # killed with SIGKILL long before
"""


@pytest.mark.docker
def test_a_dead_run_s_machine_is_restored_by_the_next_cleanup(
        hosts: dict[str, Host], run: Run, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = tmp_path / "ledger"
    monkeypatch.setattr(ssh, "LEDGER", ledger)
    child = subprocess.Popen(
        [sys.executable, "-c", DEAD_RUNNER, str(ledger), str(run.key.private_path),
         f"root@{hosts['target'].address}:22", str(tmp_path / "reports"), MESS],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
    try:
        assert child.stdout is not None
        run_id = child.stdout.readline().strip()  # the child's hosts are set up
        assert run_id, "the child run did not start"
    finally:
        child.kill()
        child.wait(timeout=10)
    short = run_id.rsplit("-", 1)[-1]
    assert _harness_on(hosts["target"], short) != ""  # its lease (60 s) still runs
    removed = ssh.reap(False, {run.run_id})  # the child's run is dead; ours is live
    assert len(removed) == 1 and "removed nft table inet repro_" in removed[0], removed
    assert "restored MTU 1500 on eth0" in removed[0]
    assert _harness_on(hosts["target"], short) == ""
    assert not ledger.exists()
    shutil.rmtree(f"/tmp/repro-{short}", ignore_errors=True)  # the dead run's runner scratch


@pytest.mark.docker
@pytest.mark.slow
def test_mtu_wedge_both_ways_through_pytest_with_provider_ssh(hosts: dict[str, Host], run: Run,
                                                              tmp_path: Path) -> None:
    """The user's path: `pytest repro/mtu_wedge --repro-provider ssh --repro-config F`, F
    naming the machines in [hosts]; both directions as expected, the machines left clean."""
    import json
    import subprocess
    import sys

    from repro.harness import names

    roles = "\n".join(f'{role} = "root@{h.address}:22"' for role, h in hosts.items())
    config = tmp_path / "machines.toml"
    config.write_text(f'[hosts]\nkey = "{run.key.private_path}"\nlease_s = 15\n'
                      f"connect_timeout_s = 5\n\n[hosts.roles]\n{roles}\n")
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(root / "repro" / "mtu_wedge" / "test_mtu_wedge.py"),
         "--repro-provider", "ssh", "--repro-config", str(config),
         "--repro-reports", str(tmp_path / "reports"), "-p", "no:cacheprovider", "-q"],
        cwd=root, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    report = json.loads((tmp_path / "reports" / "latest" / "results.json").read_text())
    got = {r["label"]: (r["provider"], r["verdict"]["outcome"]) for r in report["results"]
           if not r["superseded"]}
    assert got == {"under test": ("ssh", "pass"), "prefix fixture": ("ssh", "fail")}
    short = names.short(report["run_id"])
    for host in hosts.values():
        assert _harness_on(host, short) == "", host.name
