"""Benchmark of the QEMU backend: VM ready time, image build time, panic detection.

  .venv/bin/python -m benchmarks.bench_qemu [--vms 6] [--panics 3] [--build]

Ready time: from starting QEMU to sshd accepting a login with the run's key
(per VM, the attempt that succeeded; retries of hung boots are counted), for
N VMs started one at a time. Accelerator: whatever detect_accel chose (TCG
where /dev/kvm does not run a guest).
Image build: `--build` times a warm build (the recipe's directory exists:
nothing is repeated) and, with `--cold`, a cold one in a scratch cache.
Panic detection: a VM watched by the kernel-log watcher and the heartbeat
(0.5 s) is crashed with sysrq; figures are the time from the trigger to the
console's panic line being recorded (this includes the SSH command that fires
it), from QEMU's own GUEST_PANICKED event (pvpanic) to the console finding
(the watcher's lag), from the panic line to the heartbeat's
first missed sample, and from the trigger to the first sample with a new boot id.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tabulate import tabulate

from repro.harness.faults.sysrq_crash import SysrqCrash
from repro.harness.history import History
from repro.harness.hosts.qemu import QemuHost, QemuProvider
from repro.harness.hosts.qemu import image as qemu_image
from repro.harness.probes.heartbeat import Heartbeat
from repro.harness.probes.kernel_log import KernelLogWatcher
from repro.harness.run import Run, start_run

INTERVAL_S = 0.5


def ready_times(run: Run, n: int) -> tuple[list[float], int, str]:
    times, retries, accel = [], 0, ""
    for i in range(n):
        with QemuProvider().hosts(run, [f"b{i}"]) as hosts:
            h = hosts[f"b{i}"]
            assert isinstance(h, QemuHost)
            times.append(h.boot_s)
            retries += h.attempts - 1
            accel = h.accel.name
    return times, retries, accel


def _wait(cond: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.02)  # condition poll


def panic_latencies(run: Run, panics: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"console": [], "watcher_lag": [], "heartbeat": [],
                                   "new_boot_id": []}
    with QemuProvider().hosts(run, ["crashy"]) as hosts:
        host = hosts["crashy"]
        for _ in range(panics):
            history = History()
            with KernelLogWatcher(history, host), Heartbeat(
                    history, host.name, host.address, run.key.private_path,
                    interval_s=INTERVAL_S):
                _wait(lambda h=history: any(e.get("boot_id") for e in h.events()), 60)
                first_boot = next(e.get("boot_id") for e in history.events()
                                  if e.get("boot_id"))
                crash = SysrqCrash(host)
                fired = history.now()
                crash.inject()
                _wait(lambda h=history: any(e.kind == "kernel" and e.get("pattern") == "panic"
                                            for e in h.events()), 30)
                panic = next(e for e in history.events()
                             if e.kind == "kernel" and e.get("pattern") == "panic")
                _wait(lambda h=history, p=panic: any(
                    e.get("leg") == "tcp" and e.t >= p.t and not e.get("ok")
                    for e in h.events()), 30)
                miss = next(e for e in history.events() if e.get("leg") == "tcp"
                            and e.t >= panic.t and not e.get("ok"))
                _wait(lambda h=history, b=first_boot: any(
                    e.get("boot_id") not in (None, b) for e in h.events()), 120)
                back = next(e for e in history.events()
                            if e.get("boot_id") not in (None, first_boot))
                out["console"].append(panic.t - fired)
                seen = [e.t for e in history.events()
                        if e.kind == "host" and e.get("event") == "panicked" and e.t >= fired]
                if seen:
                    out["watcher_lag"].append(panic.t - seen[0])
                out["heartbeat"].append(miss.t - panic.t)
                out["new_boot_id"].append(back.t - fired)
    return out


def build_times(cold: bool) -> list[list[object]]:
    rows: list[list[object]] = []
    if cold:
        with tempfile.TemporaryDirectory(prefix="bench-cold-", dir=qemu_image.CACHE) as d:
            _, spent = qemu_image.build(Path(d))
            rows.append(["image build, cold", 1, f"{spent:.1f}", f"{spent:.1f}"])
    _, spent = qemu_image.build()
    rows.append(["image build, warm", 1, f"{spent:.3f}", f"{spent:.3f}"])
    return rows


def summarize(name: str, xs: list[float]) -> list[object]:
    return [name, len(xs), f"{statistics.median(xs):.2f}", f"{max(xs):.2f}"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vms", type=int, default=6)
    parser.add_argument("--panics", type=int, default=3)
    parser.add_argument("--build", action="store_true", help="time the image build (warm)")
    parser.add_argument("--cold", action="store_true", help="with --build: also a cold build")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="repro-bench-") as tmp:
        run = start_run(Path(tmp) / "reports")
        try:
            headers = ["figure", "n", "p50 s", "max s"]
            rows: list[list[object]] = []

            def show(row: list[object]) -> None:
                rows.append(row)
                print(tabulate([row], headers=headers, tablefmt="plain"), flush=True)

            if args.build:
                for row in build_times(args.cold):
                    show(row)
            lo = os.getloadavg()[0]
            times, retries, accel = ready_times(run, args.vms)
            show(summarize(f"VM ready ({accel}), {retries} boot retries", times))
            print(f"each: {' '.join(f'{t:.2f}' for t in times)} s; "
                  f"load {lo:.2f} / {os.getloadavg()[0]:.2f}", flush=True)
            if args.panics:
                show_panics(show, panic_latencies(run, args.panics))
            print(tabulate(rows, headers=headers, tablefmt="github"))
        finally:
            run.close()


def show_panics(show: Callable[[list[object]], None], lat: dict[str, list[float]]) -> None:
    show(summarize("trigger sent -> console finding", lat["console"]))
    if lat["watcher_lag"]:
        show(summarize("QEMU saw panic -> console finding", lat["watcher_lag"]))
    show(summarize(f"panic -> heartbeat miss ({INTERVAL_S} s)", lat["heartbeat"]))
    show(summarize("panic -> new boot id seen", lat["new_boot_id"]))


if __name__ == "__main__":
    main()
