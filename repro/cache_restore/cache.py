"""The build cache: a .tar.gz of known files, and the manifest every target is checked against.

Model: `files` files in a few nested folders (the shape of a dependency cache), sizes drawn
around the mean so that they add up to `cache_mb`, contents pseudo-random from a fixed seed
(incompressible, like the archives and binaries of a real cache: the tarball is as big as
the data, so bytes on the wire track progress). Made once per run and size on the runner,
in the run's scratch directory; the manifest maps each file's path (as `tar` writes it
under DEST) to its SHA-256.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import tarfile
from dataclasses import dataclass
from pathlib import Path

SEED = 20130401


@dataclass(frozen=True)
class Cache:
    path: Path                  # the tarball on the runner
    manifest: dict[str, str]    # relative path -> sha256 hex
    size: int                   # bytes of the tarball


def make(scratch: Path, cache_mb: float, files: int) -> Cache:
    tarball = scratch / f"cache-{cache_mb:g}mb-{files}.tar.gz"
    rng = random.Random(SEED)
    mean = cache_mb * 1e6 / files
    sizes = [max(1, int(rng.uniform(0.2, 1.8) * mean)) for _ in range(files)]
    names = [f"deps/lib{i % 12:02d}/pkg{i % 5}/file{i:04d}.bin" for i in range(files)]
    manifest: dict[str, str] = {}
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=1, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w") as tar:
        for name, size in zip(names, sizes, strict=True):
            data = rng.randbytes(size)
            manifest[name] = hashlib.sha256(data).hexdigest()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = size, 0o644, 1364774400
            tar.addfile(info, io.BytesIO(data))
    tarball.write_bytes(buf.getvalue())
    return Cache(tarball, manifest, tarball.stat().st_size)
