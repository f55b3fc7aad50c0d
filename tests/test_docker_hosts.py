"""Docker backend: parallel start, readiness by login, failure cleanup, MTU fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from repro.harness.errors import ProvisionError
from repro.harness.faults.base import injected
from repro.harness.faults.mtu import MtuFault, read_mtu
from repro.harness.history import History
from repro.harness.hosts import open_hosts
from repro.harness.run import start_run
from tests.leftovers import leftovers

pytestmark = pytest.mark.docker


@pytest.fixture
def run(tmp_path: Path):
    r = start_run(tmp_path / "reports")
    yield r
    r.close()


def test_hosts_start_in_parallel_log_in_and_reach_each_other(run):
    with open_hosts("docker", run, ["a", "b", "c"]) as hosts:
        assert set(hosts) == {"a", "b", "c"}
        a, b = hosts["a"], hosts["b"]
        assert a.url() == f"docker://{run.name('a')}"
        # host-to-host ssh with the run's key, as the flood does
        assert a.run(f"ssh {b.address} hostname", timeout=15).stdout.strip() == "b"
        with a.ssh() as conn:
            boot = conn.run("cat /proc/sys/kernel/random/boot_id", hide=True, in_stream=False)
            assert boot.stdout.strip()
        assert a.run("sleep 5", timeout=0.5, check=False).exit_code is None  # timed out
    assert leftovers(run.short) == [f"scratch /tmp/{run.name()}"]


def test_a_host_that_fails_to_start_takes_the_others_down(run):
    with pytest.raises(ProvisionError), open_hosts("docker", run, ["good", "bad/role"]):
        pass
    assert leftovers(run.short) == [f"scratch /tmp/{run.name()}"]


def test_mtu_fault_is_confirmed_by_df_probes_and_healed(run, tmp_path):
    history = History(tmp_path / "h.jsonl")
    with open_hosts("docker", run, ["x", "y"]) as hosts:
        x, y = hosts["x"], hosts["y"]
        before = read_mtu(x)
        with injected(MtuFault(x, y.address, 1400), history) as applied:
            assert applied.effective, applied.shortfall
            assert applied.measured == {"mtu": 1400, "df_fits": True, "df_too_big_refused": True}
        assert read_mtu(x) == before
        # a path where the DF probe cannot get through is reported as a shortfall
        y.run("nft add table inet repro_t && nft 'add chain inet repro_t in "
              "{ type filter hook input priority 0; }' && nft add rule inet repro_t in "
              "meta l4proto icmp drop", timeout=10)
        with injected(MtuFault(x, y.address, 1400), history) as applied:
            assert not applied.effective and "DF probe does not confirm" in applied.shortfall
    kinds = [e.kind for e in history.events()]
    assert kinds.count("fault.start") == kinds.count("fault.stop") == 2


def test_login_files_are_mounted_and_the_host_is_known_while_it_lives(run):
    from repro.harness.hosts import docker as dh
    with open_hosts("docker", run, ["m"]) as hosts:
        m = hosts["m"]
        assert isinstance(m, dh.DockerHost) and 0 < m.ready_s < dh.READY_TIMEOUT_S
        login = run.scratch / "login-m"
        # the host's /root/.ssh is the run's directory: what sshd read is what the runner wrote
        assert m.run("cat /root/.ssh/authorized_keys", timeout=10).stdout.strip() \
            == run.key.public_line.strip()
        assert (login / "authorized_keys").stat().st_mode & 0o777 == 0o600
        m.put(b"x\n", "/root/.ssh/known_hosts")  # the host may write there (ssh:// runs do)
        assert (login / "known_hosts").read_bytes() == b"x\n"
        assert dh.on_this_kernel(m.address)
        address = m.address
    assert not dh.on_this_kernel(address)
    assert not (run.scratch / "login-m").exists()


def test_login_files_are_copied_in_where_they_cannot_be_mounted(run, monkeypatch):
    from repro.harness.hosts import docker as dh
    monkeypatch.setattr(dh, "_can_mount_login", lambda *a: False)
    with open_hosts("docker", run, ["c"]) as hosts:
        c = hosts["c"]
        assert c.run("cat /root/.ssh/authorized_keys", timeout=10).stdout.strip() \
            == run.key.public_line.strip()
        assert not (run.scratch / "login-c").exists()
