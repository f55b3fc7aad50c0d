#!/usr/bin/env python3
"""Generate a git repository of a given shape with `git fast-import` (runs on a host).

This file is copied to the git server host and run there with the host's own
python3 (Debian's python3-minimal: a subset of the standard library without json or
dataclasses, so the spec and the answer travel as Python literals read with
`ast.literal_eval`). It is also importable for tests.

Model of the repository (all content derived from `seed`, so the same spec
always gives the same commit ids):

- `master` has `master_commits` commits, oldest first; each one rewrites
  `assets/bulk.bin` with `size_kb / master_commits` KiB of fresh random
  (incompressible) bytes and bumps `README`. A full clone therefore moves about
  `size_kb` KiB; a `--depth 1` clone about one commit's share.
- each branch `{"name", "fork", "commits"}` forks from master commit number
  `fork` (0 = the root commit) and adds `commits` small commits of its own.
- every `tag_every`-th master commit gets an annotated tag `v<n>`.

Input: one dict literal (the spec) as argv[1]. Output on stdout: a dict literal
with the commit ids of every branch (oldest first), the tags and the pack size.
"""

from __future__ import annotations

import ast
import os
import random
import subprocess
import sys
import tempfile

EPOCH = 1364000000  # March 2013, when the postmortem's builds were cloning
AUTHOR = "Repro Generator <repro@example.invalid>"


def _data(payload: bytes) -> bytes:
    return b"data %d\n" % len(payload) + payload + b"\n"


def stream(spec: dict) -> tuple[bytes, dict]:
    """The fast-import stream for `spec`, and the mark of every commit per branch."""
    rng = random.Random(spec.get("seed", 1))
    n = int(spec["master_commits"])
    if n < 1:
        raise ValueError("master_commits must be at least 1")
    bulk = max(1, int(spec["size_kb"]) * 1024 // n)
    out: list[bytes] = []
    marks: dict[str, list[int]] = {"master": []}
    mark = 0
    t = EPOCH

    def commit(ref: str, parent: int | None, message: str, files: list[tuple[str, bytes]],
               blob: int | None = None) -> int:
        nonlocal mark, t
        mark += 1
        t += 60
        out.append(b"commit %s\nmark :%d\n" % (ref.encode(), mark))
        out.append(b"author %s %d +0000\ncommitter %s %d +0000\n"
                   % (AUTHOR.encode(), t, AUTHOR.encode(), t))
        out.append(_data(message.encode()))
        if parent is not None:
            out.append(b"from :%d\n" % parent)
        if blob is not None:
            out.append(b"M 100644 :%d assets/bulk.bin\n" % blob)
        for path, content in files:
            out.append(b"M 100644 inline %s\n" % path.encode() + _data(content))
        out.append(b"\n")
        return mark

    parent = None
    for i in range(n):
        mark += 1
        out.append(b"blob\nmark :%d\n" % mark + _data(rng.randbytes(bulk)))
        parent = commit("refs/heads/master", parent, f"master commit {i}",
                        [("README", f"repro generated repository, commit {i}\n".encode())],
                        blob=mark)
        marks["master"].append(parent)
    for b in spec.get("branches", []):
        name, fork, count = b["name"], int(b["fork"]), int(b["commits"])
        if not 0 <= fork < n:
            raise ValueError(f"branch {name} forks at {fork}, master has {n} commits")
        parent = marks["master"][fork]
        marks[name] = []
        for j in range(count):
            parent = commit(f"refs/heads/{name}", parent, f"{name} commit {j}",
                            [(f"branches/{name}.txt", f"{name} {j} {rng.random()}\n".encode())])
            marks[name].append(parent)
        if count == 0:  # a branch pointing at its fork point
            out.append(b"reset refs/heads/%s\nfrom :%d\n\n" % (name.encode(), parent))
            marks[name].append(parent)
    every = int(spec.get("tag_every", 0))
    tags: dict[str, int] = {}
    if every > 0:
        for i in range(every - 1, n, every):
            tag = f"v{i // every + 1}"
            out.append(b"tag %s\nfrom :%d\ntagger %s %d +0000\n"
                       % (tag.encode(), marks["master"][i], AUTHOR.encode(), t))
            out.append(_data(f"release {tag}".encode()))
            tags[tag] = marks["master"][i]
    return b"".join(out), {"branches": marks, "tags": tags}


def generate(spec: dict) -> dict:
    path = spec["path"]
    subprocess.run(["git", "init", "-q", "--bare", "-b", "master", path], check=True)
    data, marks = stream(spec)
    with tempfile.NamedTemporaryFile(prefix="repro-marks-", delete=False) as f:
        marks_file = f.name
    try:
        subprocess.run(["git", "-C", path, "fast-import", "--quiet", "--force",
                        f"--export-marks={marks_file}"], input=data, check=True)
        sha = {}
        with open(marks_file) as marks_text:
            for line in marks_text:
                m, s = line.split()
                sha[int(m[1:])] = s
    finally:
        os.unlink(marks_file)
    subprocess.run(["git", "-C", path, "repack", "-a", "-d", "-q"], check=True)
    pack = sum(os.path.getsize(os.path.join(root, f))
               for root, _, files in os.walk(os.path.join(path, "objects", "pack")) for f in files
               if f.endswith(".pack"))
    open(os.path.join(path, "git-daemon-export-ok"), "w").close()
    return {"branches": {b: [sha[m] for m in ms] for b, ms in marks["branches"].items()},
            "tags": {t: sha[m] for t, m in marks["tags"].items()},
            "pack_bytes": pack}


if __name__ == "__main__":
    sys.stdout.write(repr(generate(ast.literal_eval(sys.argv[1]))) + "\n")
