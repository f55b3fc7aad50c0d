#!/usr/bin/env bash
# Idempotent set-up for repro on a fresh Debian 12 machine (run as root).
#
# Model: a list of steps; each step has a "recipe" (the text that decides its
# result) and a stamp file .cache/stamps/<step> holding the recipe's hash. A
# step whose stamp matches is skipped, so a second run repeats nothing. Steps:
#   packages   Debian packages the harness and its reproductions need
#   docker     a Docker daemon that answers (started here if none does)
#   venv       the Python environment in .venv
#   image      the base host image (debootstrap + docker import), tagged by recipe hash
#   extra      setup/steps/*.sh, one file per later component (QEMU image, PostgreSQL, ...)
# Usage: setup/setup.sh [STEP...]   (no step = all)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=$ROOT/.cache
mkdir -p "$CACHE/stamps" "$CACHE/logs"
export DEBIAN_FRONTEND=noninteractive

say() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 2; }
hash_of() { sha256sum | cut -c1-12; }
stamp_ok() { [ -f "$CACHE/stamps/$1" ] && [ "$(cat "$CACHE/stamps/$1")" = "$2" ]; }
stamp_set() { printf '%s' "$2" > "$CACHE/stamps/$1"; }

[ "$(id -u)" = 0 ] || die "set-up needs root (it installs Debian packages and starts dockerd); run it with sudo"

# ---- packages ----------------------------------------------------------------
PACKAGES=(docker.io debootstrap nftables iproute2 ethtool tcpdump iputils-ping
          openssh-client qemu-system-x86 qemu-utils postgresql python3-venv
          chromium etcd-server etcd-client prometheus faketime openjdk-17-jdk-headless
          lz4)  # lz4: the guest kernel's payload, unpacked to boot it as a PVH ELF
step_packages() {
    local want; want=$(printf '%s\n' "${PACKAGES[@]}" | hash_of)
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then stamp_set packages "$want"; return; fi
    say "installing Debian packages: ${missing[*]} (log: .cache/logs/apt.log)"
    timeout 600 apt-get update -q >>"$CACHE/logs/apt.log" 2>&1 || die "apt-get update failed; see .cache/logs/apt.log"
    timeout 1800 apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$CACHE/logs/apt.log" 2>&1 \
        || die "apt-get install failed; see .cache/logs/apt.log"
    stamp_set packages "$want"
}

# ---- docker daemon -------------------------------------------------------------
DOCKERD_LOG=/var/log/repro-dockerd.log
step_docker() {
    if timeout 10 docker info >/dev/null 2>&1; then return; fi
    say "starting dockerd (log: $DOCKERD_LOG)"
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        timeout 60 systemctl start docker || true
    fi
    if ! timeout 10 docker info >/dev/null 2>&1; then
        setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 < /dev/null &
    fi
    for _ in $(seq 1 120); do
        timeout 5 docker info >/dev/null 2>&1 && return
        sleep 0.5   # polling a condition with a bound, not synchronising
    done
    die "dockerd did not answer within 60 s; see $DOCKERD_LOG"
}

# ---- python environment ------------------------------------------------------------
pick_python() {
    for py in python3.11 python3.12 python3; do
        if command -v "$py" >/dev/null && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            echo "$py"; return
        fi
    done
    die "no Python >= 3.11 found; install python3 (Debian package python3)"
}
step_venv() {
    local want; want=$(cat pyproject.toml | hash_of)
    if stamp_ok venv "$want" && [ -x .venv/bin/python ]; then return; fi
    say "making the Python environment in .venv (log: .cache/logs/pip.log)"
    [ -x .venv/bin/python ] || "$(pick_python)" -m venv .venv
    # the distribution was called "repro" before 0.1.0's rename to pytest-repro: two
    # installs would register the pytest plugin twice
    .venv/bin/pip uninstall -q -y repro >>"$CACHE/logs/pip.log" 2>&1 || true
    timeout 900 .venv/bin/pip install -q -e '.[dev]' >>"$CACHE/logs/pip.log" 2>&1 \
        || die "pip install failed; see .cache/logs/pip.log"
    stamp_set venv "$want"
}

# ---- base host image -------------------------------------------------------------------
# Everything that decides the image's contents is in this recipe; its hash is the tag.
# etcd (leader_deadman's store and the agents' etcdctl), faketime (sunday_scheduler's clock),
# a JRE (container_awareness's service, compiled on the runner with javac)
IMAGE_PACKAGES="openssh-server,openssh-client,iproute2,nftables,iputils-ping,procps,git,ethtool,tcpdump,netcat-openbsd,ca-certificates,python3-minimal,e2fsprogs,lvm2,psmisc,etcd-server,etcd-client,faketime,openjdk-17-jre-headless"
debian_mirror() {
    # The machine's own apt configuration says where Debian's packages are reachable.
    local url
    url=$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
          | grep -v security | head -n1 | awk '{print $2}')
    [ -n "$url" ] || die "no Debian mirror found in /etc/apt/sources.list*; add one"
    echo "$url"
}
image_recipe() { printf 'bookworm minbase %s\n' "$IMAGE_PACKAGES"; cat setup/image-fixup.sh; }
step_image() {
    local tag; tag=$(image_recipe | hash_of)
    local name="repro-base:$tag"
    if timeout 30 docker image inspect "$name" >/dev/null 2>&1; then
        timeout 30 docker tag "$name" repro-base:latest; return
    fi
    local root; root=$(mktemp -d /tmp/repro-rootfs.XXXXXX)
    trap 'rm -rf "$root"' RETURN
    say "building base host image $name with debootstrap (about a minute; log: .cache/logs/debootstrap.log)"
    timeout 1200 debootstrap --variant=minbase --include="$IMAGE_PACKAGES" bookworm "$root" "$(debian_mirror)" \
        >>"$CACHE/logs/debootstrap.log" 2>&1 &
    local pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        local n; n=$(grep -sc '^I: \(Retrieving\|Extracting\|Unpacking\|Configuring\)' "$CACHE/logs/debootstrap.log" || true)
        printf '\r[setup] debootstrap: %s steps done' "$n" >&2
        sleep 2   # progress display cadence
    done
    printf '\n' >&2
    wait "$pid" || die "debootstrap failed; see .cache/logs/debootstrap.log"
    chroot "$root" /bin/sh < setup/image-fixup.sh >>"$CACHE/logs/debootstrap.log" 2>&1 || die "image fix-up failed"
    say "importing into Docker"
    tar -C "$root" -c . | timeout 600 docker import \
        --change 'CMD ["/usr/sbin/sshd","-D","-e"]' --change 'LABEL repro.image=base' - "$name" >/dev/null
    timeout 30 docker tag "$name" repro-base:latest
    # older recipes of the base image are no longer needed
    docker images --format '{{.Repository}}:{{.Tag}}' repro-base | grep -vE ":(latest|$tag)\$" \
        | xargs -r docker rmi >/dev/null 2>&1 || true
}

step_extra() {
    for f in setup/steps/*.sh; do
        [ -e "$f" ] || continue
        # shellcheck source=/dev/null
        ROOT=$ROOT CACHE=$CACHE bash "$f" || die "$f failed"
    done
}

steps=("$@"); [ ${#steps[@]} -gt 0 ] || steps=(packages docker venv image extra)
for s in "${steps[@]}"; do "step_$s"; done
