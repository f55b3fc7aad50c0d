"""Java for the container_awareness run: javac on the runner, classes into the hosts, JVMs.

Model: Debian's OpenJDK 17 on both sides, no build tool. The runner compiles at test time
(`javac --release 17`) the service's source (one file, its public class named after the
file) and the harness's own two programs (java/Downstream.java, java/Probe.java), each into
its own folder in the run's scratch directory, once per run and source (the directions
share it). A jar is copied as it is. `Program.install` copies a program's files into one
folder of a host (`/tmp/repro-<name>`); `start` runs `java ARGS` there in the background
in its own session, its output to a log and its pid to a file, and returns the pid (the
JVM's own: `exec`). The JVMs go with the containers.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from repro.harness.errors import PrerequisiteError
from repro.harness.hosts.base import Host
from repro.harness.procs import wait_for

JAVA_DIR = Path(__file__).resolve().parent / "java"
HARNESS_SOURCES = (JAVA_DIR / "Downstream.java", JAVA_DIR / "Probe.java")
COMPILE_TIMEOUT_S = 180.0  # javac of three small files: 2 s idle, ~10 s on a loaded 2-core runner
CMD_TIMEOUT_S = 30.0
START_TIMEOUT_S = 20.0


class CompileError(Exception):
    """The service's source does not compile (the configuration under test is broken)."""


@dataclass(frozen=True)
class Program:
    name: str                   # the folder on the host: /tmp/repro-<name>
    files: dict[str, bytes]     # file name -> content
    main: str                   # the class to run, or "" for a jar

    @property
    def folder(self) -> str:
        return f"/tmp/repro-{self.name}"

    def launch(self, *args: str, main: str = "") -> str:
        """The java arguments that run it (after the JVM options); `main`: another of its
        classes than its main one."""
        if not self.main:
            jar = next(iter(self.files))
            return " ".join(["-jar", f"{self.folder}/{jar}", *map(shlex.quote, args)])
        return " ".join(["-cp", self.folder, main or self.main, *map(shlex.quote, args)])

    def install(self, host: Host) -> None:
        host.run(f"rm -rf {self.folder} && mkdir -p {self.folder}", timeout=CMD_TIMEOUT_S)
        for file, content in self.files.items():
            host.put(content, f"{self.folder}/{file}")


def javac() -> str:
    found = shutil.which("javac")
    if not found:
        raise PrerequisiteError("javac is missing on the runner (container_awareness compiles "
                                "its Java at test time)",
                                "apt-get install openjdk-17-jdk-headless")
    return found


def compile_program(name: str, sources: Sequence[Path], scratch: Path, main: str) -> Program:
    """Compile `sources` (once per content, in `scratch`) into the Program `name`."""
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:12]
    out = scratch / f"javac-{name}-{digest}"
    if not (out / f"{main}.class").is_file():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        try:
            res = subprocess.run([javac(), "--release", "17", "-nowarn", "-d", str(out),
                                  *map(str, sources)], capture_output=True, text=True,
                                 timeout=COMPILE_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as exc:
            raise CompileError(f"javac did not finish within {COMPILE_TIMEOUT_S:.0f} s") from exc
        if res.returncode != 0:
            shutil.rmtree(out, ignore_errors=True)
            raise CompileError((res.stderr or res.stdout).strip()[-600:])
    files = {p.name: p.read_bytes() for p in sorted(out.glob("*.class"))}
    return Program(name, files, main)


def service_program(service: Path, scratch: Path) -> Program:
    """The service under test: its source compiled, or its jar as it is."""
    if service.suffix == ".jar":
        return Program("service", {service.name: service.read_bytes()}, "")
    return compile_program("service", [service], scratch, service.stem)


def harness_program(scratch: Path) -> Program:
    return compile_program("java", HARNESS_SOURCES, scratch, "Downstream")


def start(host: Host, options: str, launch: str, tag: str,
          env: Mapping[str, str] | None = None) -> int:
    """`java OPTIONS LAUNCH` in the background on `host`; the JVM's pid. Output goes to
    /tmp/repro-<tag>.log (read it with `log`)."""
    pidfile = f"/tmp/repro-{tag}.pid"
    host.run(f"rm -f {pidfile}; setsid sh -c 'echo $$ > {pidfile}; exec java {options} "
             f"{launch}' > /tmp/repro-{tag}.log 2>&1 < /dev/null &", timeout=CMD_TIMEOUT_S,
             env=env)

    def pid() -> int | None:
        res = host.run(f"cat {pidfile} 2>/dev/null", timeout=CMD_TIMEOUT_S, check=False)
        return int(res.stdout) if res.stdout.strip().isdigit() else None
    return wait_for(pid, timeout=START_TIMEOUT_S, interval=0.1, what=f"{tag}'s pid file")


def log(host: Host, tag: str, tail: int = 4000) -> str:
    res = host.run(f"tail -c {tail} /tmp/repro-{tag}.log 2>/dev/null", timeout=CMD_TIMEOUT_S,
                   check=False)
    return res.stdout


def alive(host: Host, pid: int) -> bool:
    return host.run(f"kill -0 {pid}", timeout=CMD_TIMEOUT_S, check=False).ok


def run_once(host: Host, options: str, launch: str) -> str:
    """`java OPTIONS LAUNCH` in the foreground: its output."""
    res = host.run(f"java {options} {launch}", timeout=60.0, check=False)
    return res.stdout + res.stderr
