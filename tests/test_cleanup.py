"""Reaping: a run's start removes what dead runs left and nothing of live runs."""

from __future__ import annotations

import subprocess

import docker
import pytest

from repro.harness import cleanup, names
from repro.harness.run import start_run

pytestmark = pytest.mark.docker


def test_start_of_a_run_reaps_dead_runs_only(tmp_path):
    dc = docker.from_env(timeout=60)
    live = start_run(tmp_path / "live")
    dead_id = "20000101-000000-dead"
    try:
        dead_net = dc.networks.create(names.object_name(dead_id, "net"),
                                      labels={names.LABEL_RUN: dead_id, names.LABEL_PID: "1"})
        live_net = dc.networks.create(live.name("net"), labels=names.run_labels(live.run_id))
        subprocess.run(["ip", "link", "add", names.iface_name(dead_id, "x"), "type", "bridge"],
                       check=True, timeout=10)
        removed = cleanup.reap(all_runs=False)
        assert f"network {dead_net.name}" in removed
        assert f"interface {names.iface_name(dead_id, 'x')}" in removed
        assert live_net.name in {n.name for n in dc.networks.list()}
        assert live.scratch.is_dir()
    finally:
        for n in dc.networks.list(filters={"label": f"{names.LABEL_RUN}={live.run_id}"}):
            n.remove()
        live.close()
