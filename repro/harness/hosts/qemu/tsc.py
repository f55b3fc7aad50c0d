"""The rate of this machine's time-stamp counter, which a TCG guest's TSC runs at.

Model: under TCG, QEMU answers a guest's `rdtsc` with the host's own counter
(cpu_get_host_ticks), so the guest's TSC ticks at the host's rate. A microvm
guest has no HPET and no ACPI PM timer to calibrate it against (its kernel
gives up on the PIT under TCG and hangs with no clocksource), so the rate is
measured here and passed on the guest's command line (`tsc_early_khz=`).

Measured by reading the counter twice around a 100 ms sleep against
CLOCK_MONOTONIC (the clock the harness observes with); the median of three
agrees with the kernel's own refined calibration of a `pc` guest within
0.05 % (2445.4 MHz here; a loaded runner preempts between the reads): a guest
clock off by 0.5 ms per second at worst. Reading the counter takes one
instruction no library offers: a 10-byte function (rdtsc; shl rdx, 32;
or rax, rdx; ret) in an executable page, called through ctypes. x86-64 only;
None where that cannot run (another architecture, a W^X policy).
"""

from __future__ import annotations

import ctypes
import mmap
import platform
import threading
import time
from collections.abc import Callable

RDTSC = bytes([0x0F, 0x31, 0x48, 0xC1, 0xE2, 0x20, 0x48, 0x09, 0xD0, 0xC3])
SPAN_S = 0.1
ROUNDS = 3


_lock = threading.Lock()
_measured: list[int | None] = []  # the one measurement of this process, once made


def host_tsc_khz() -> int | None:
    """The host's TSC rate in kHz (measured once per process), or None where it cannot be
    read. Thread-safe: VMs boot in parallel."""
    with _lock:
        if not _measured:
            _measured.append(measure_tsc_khz())
        return _measured[0]


def measure_tsc_khz() -> int | None:
    """A fresh measurement: the median of ROUNDS spans of SPAN_S."""
    with _Rdtsc() as counter:
        if counter is None:
            return None
        rates = []
        for _ in range(ROUNDS):
            t0, c0 = time.monotonic_ns(), counter()
            time.sleep(SPAN_S)  # the span measured over, not synchronisation
            c1, t1 = counter(), time.monotonic_ns()
            rates.append((c1 - c0) * 1_000_000 / (t1 - t0))
        return round(sorted(rates)[len(rates) // 2])


class _Rdtsc:
    """The counter-reading function, in an executable page that lives as long as the
    `with` block (unmapped after: a call into it then would crash the process)."""

    def __enter__(self) -> Callable[[], int] | None:
        self._page: mmap.mmap | None = None
        if platform.machine() not in ("x86_64", "AMD64"):
            return None
        try:
            self._page = mmap.mmap(-1, mmap.PAGESIZE,
                                   prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        except OSError:
            return None
        self._page.write(RDTSC)
        self._buffer = ctypes.c_char.from_buffer(self._page)
        return ctypes.CFUNCTYPE(ctypes.c_uint64)(ctypes.addressof(self._buffer))

    def __exit__(self, *exc: object) -> None:
        if self._page is not None:
            del self._buffer  # the exported buffer must go before the page can close
            self._page.close()
