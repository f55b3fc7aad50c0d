#!/usr/bin/env bash
# Gate a candidate host image against a baseline, locally with Docker.
# Builds both from this Dockerfile (baseline: the fixed init; candidate: the init
# given as $1, default the postmortem's pre-fix one), runs `repro gate`, removes
# the two images again. Exit code: the gate's (0 passed, 1 blocked, 2 bad input).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
candidate_init=$(realpath "${1:-$root/fixtures/mtu_wedge/prefix.sh}")
ctx=$(mktemp -d /tmp/repro-gate-ctx.XXXXXX)
trap 'docker rmi -f repro-example-buildhost:baseline repro-example-buildhost:candidate >/dev/null 2>&1 || true; rm -rf "$ctx"' EXIT
cp "$here/Dockerfile" "$ctx/"
cp "$root/fixtures/mtu_wedge/fixed.sh" "$ctx/baseline.sh"
cp "$candidate_init" "$ctx/candidate.sh"
timeout 300 docker build -q --build-arg INIT=baseline.sh -t repro-example-buildhost:baseline "$ctx" >/dev/null
timeout 300 docker build -q --build-arg INIT=candidate.sh -t repro-example-buildhost:candidate "$ctx" >/dev/null
"$root/.venv/bin/repro" gate --baseline docker:repro-example-buildhost:baseline \
    --candidate docker:repro-example-buildhost:candidate --incidents mtu_wedge
