"""What of the harness is on this machine right now (the before-stop hook's view)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def command_output(argv: list[str]) -> str:
    """`argv`'s standard output (30 s at most: a timeout raises, so nothing is hidden)."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False).stdout


def leftovers(run_short: str | None = None) -> list[str]:
    """Harness objects of one run (by short id) or of every run."""
    tag = run_short or r"[0-9a-f]{4}"
    out = command_output
    found = []
    found += [f"container {n}" for n in out(["docker", "ps", "-a", "--format", "{{.Names}}",
                                              "--filter", "label=repro.run"]).split()
              if re.match(rf"repro-{tag}", n)]
    found += [f"network {n}" for n in out(["docker", "network", "ls", "--format", "{{.Name}}",
                                            "--filter", "label=repro.run"]).split()
              if re.match(rf"repro-{tag}", n)]
    found += [f"interface {m}" for m in re.findall(rf"^\d+: (rp{tag}\w*)",
                                                   out(["ip", "-o", "link"]), re.M)]
    found += [f"netns {n}" for n in out(["ip", "netns", "list"]).split()
              if re.match(rf"repro-{tag}", n)]
    found += [f"nft {t}" for t in re.findall(rf"^table \w+ (repro[_-]{tag}\w*)",
                                             out(["nft", "list", "tables"]), re.M)]
    found += [f"scratch {p}" for p in Path("/tmp").glob("repro-*")
              if re.fullmatch(rf"repro-{tag}", p.name)]
    found += [f"freezer cgroup {p.name}" for p in Path("/sys/fs/cgroup/freezer").glob("repro-*")
              if re.match(rf"repro-{tag}-", p.name)]
    found += [f"process {line}" for line in out(
        ["pgrep", "-af", f"(etcd|prometheus|postgres|java|faketime).*repro-{tag}"]).splitlines()]
    found += [f"qemu {line}" for line in out(["pgrep", "-af", f"qemu-system.*repro-{tag}"])
              .splitlines()]
    return found


def short_of(pid: int) -> str:
    """The short run id of the run whose owner process is `pid` ("" while it has none)."""
    for owner in Path("/tmp").glob("repro-*/owner.pid"):
        try:
            if owner.read_text().split()[0] == str(pid):
                return owner.parent.name.split("-")[1]
        except (OSError, IndexError):
            continue  # a scratch dir being made or removed
    return ""
