#!/usr/bin/env python3
"""git's `uploadpack.packObjectsHook` on the git server: the pack, passed on at a set pace.

Runs on the server host with its own python3 (stdlib only). git runs it as
`pace_hook.py RATE git pack-objects ...`: it starts that pack-objects (stdin
inherited: the wanted objects), and copies the pack to its stdout (to
upload-pack, then the client) so that by any moment t after the start at most
RATE * t bytes have been passed on: a chunk is written only once its last byte
is due. No burst allowance, so no fetch can outrun the pace, whatever the link
allows. A reader that went away (a cancelled client) ends it: pack-objects is
killed and the hook exits 1.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import BinaryIO, cast

CHUNK = 1024  # bytes per write: the pace is kept to within a chunk


def main(argv: list[str]) -> int:
    rate = float(argv[1])  # bytes per second
    proc = subprocess.Popen(argv[2:], stdout=subprocess.PIPE)
    pack = cast(BinaryIO, proc.stdout)
    out = sys.stdout.buffer
    started, sent = time.monotonic(), 0
    try:
        while data := pack.read1(CHUNK):  # type: ignore[attr-defined]  # a BufferedReader
            sent += len(data)
            wait = started + sent / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # the pace itself, not a synchronisation
            out.write(data)
            out.flush()
    except BrokenPipeError:
        proc.kill()
        proc.wait()
        return 1
    return proc.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
