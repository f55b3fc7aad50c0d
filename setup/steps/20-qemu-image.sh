#!/usr/bin/env bash
# QEMU guest image (issue 3): Debian cloud kernel + initramfs + debootstrapped root,
# cached in $CACHE/qemu/<recipe hash>/; a second run finds it and repeats nothing.
# The recipe and the builder live in repro/harness/hosts/qemu/image.py and qemu_guest.py.
set -euo pipefail
cd "$ROOT"
want=$(.venv/bin/python -c "from repro.harness.hosts.qemu.image import main; raise SystemExit(main(['hash']))")
if [ -f "$CACHE/stamps/qemu-image" ] && [ "$(cat "$CACHE/stamps/qemu-image")" = "$want" ] \
    && [ -f "$CACHE/qemu/$want/manifest.json" ]; then
    exit 0
fi
printf '[setup] building the QEMU guest image %s (debootstrap + kernel, about a minute; log: .cache/logs/qemu-image.log)\n' "$want" >&2
timeout 2400 .venv/bin/python -c "from repro.harness.hosts.qemu.image import main; raise SystemExit(main(['build']))"
printf '%s' "$want" > "$CACHE/stamps/qemu-image"
