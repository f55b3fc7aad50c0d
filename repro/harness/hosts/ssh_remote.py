"""What the ssh backend runs on an existing machine: claim, watchdog, restore (POSIX sh).

Model: everything the harness keeps on the machine is in one directory named
after the run, `/tmp/repro-<short>-ssh` (mode 700, root's):

  owner, lease_s, lease   who holds the machine; `lease` is touched by the runner
                          every lease_s/4 (its mtime is the lease)
  baseline.{nft,tc,mtu}   nft tables, root qdiscs and MTUs before the run
  manifest, saved/        files `put` outside this directory: new ones (removed at
                          the end) and the originals of overwritten ones (put back)
  id_ed25519, ssh_config  the run's key for logins from one host of the run to another
  restore.sh, watchdog.sh the undo script and the dead man's switch that runs it

The run's public key goes into the login user's authorized_keys with the
comment `repro-<short>`. `restore_script` undoes all of it and is idempotent:
processes started from the directory (by process group), nft tables named for
the run (`repro_<short>_*`, `repro-<short>-*`) or new since the baseline and
named repro*, root qdiscs that changed (back to the default), MTUs that
changed, interfaces rp<short>*, the manifest's files, files named for the
run beside the directory (/tmp/repro-<short>-*: captures...), the run's
authorized_keys line (the file and ~/.ssh too where the run created them),
and the directory. Without the directory (the host rebooted, or it was
already restored) it still removes the key line, the run's tables and
interfaces. The watchdog runs it when the lease is older than lease_s: a
machine the run cut off the network (a wedge, a partition) restores itself,
and so does one whose runner died.

A machine held by another run (a fresh lease in another run's directory) is
refused; a stale directory of a dead run is restored by the next claim.
"""

from __future__ import annotations

import shlex

SCRATCH_FMT = "/tmp/repro-{short}-ssh"
BUSY_EXIT = 3


def scratch_dir(short: str) -> str:
    return SCRATCH_FMT.format(short=short)


def _common(d: str, short: str) -> str:
    return f"d={shlex.quote(d)}; short={shlex.quote(short)}\n"


def claim_script(d: str, short: str, owner: str, lease_s: float) -> str:
    """Make the run's directory with its lease and baseline; then refuse the machine if
    another run holds it (exit BUSY_EXIT, its owner on stdout), restore stale ones."""
    return _common(d, short) + f"""set -e
mkdir -p -m 700 "$d"
printf '%s\\n' {shlex.quote(owner)} > "$d/owner"
echo {int(lease_s)} > "$d/lease_s"
touch "$d/lease"
for i in /sys/class/net/*; do echo "${{i##*/}} $(cat "$i/mtu")"; done > "$d/baseline.mtu"
if command -v nft >/dev/null 2>&1; then nft list tables > "$d/baseline.nft" 2>/dev/null || true; fi
if command -v tc >/dev/null 2>&1; then
  for i in /sys/class/net/*; do
    tc qdisc show dev "${{i##*/}}" root 2>/dev/null | {{ read -r _ kind handle _ || true
      echo "${{i##*/}} $kind $handle"; }}
  done > "$d/baseline.tc"
fi
set +e
now=$(date +%s)
for o in "${{d%/*}}"/repro-*-ssh; do
  [ -d "$o" ] && [ "$o" != "$d" ] && [ -f "$o/restore.sh" ] || continue
  l=$(cat "$o/lease_s" 2>/dev/null || echo 60)
  t=$(date -r "$o/lease" +%s 2>/dev/null || echo 0)
  if [ $((now - t)) -le "$l" ]; then
    echo "$(cat "$o/owner" 2>/dev/null || echo "$o"), lease renewed $((now - t)) s ago"
    exit {BUSY_EXIT}
  fi
  sh "$o/restore.sh" stale > /dev/null 2>&1
  echo "restored $o"
done
exit 0
"""


def watchdog_script(d: str, lease_s: float) -> str:
    """Runs restore.sh once the lease is older than lease_s; exits when the lease is gone."""
    return f"""d={shlex.quote(d)}; lease_s={int(lease_s)}
echo $$ > "$d/watchdog.pid"
while [ -f "$d/lease" ]; do
  t=$(date -r "$d/lease" +%s 2>/dev/null) || exit 0
  if [ $(( $(date +%s) - t )) -gt "$lease_s" ]; then exec sh "$d/restore.sh" watchdog; fi
  sleep 1
done
"""


def start_watchdog(d: str) -> str:
    return (f"setsid sh {shlex.quote(d)}/watchdog.sh < /dev/null > /dev/null 2>&1 &\n"
            f"i=0; while [ ! -s {shlex.quote(d)}/watchdog.pid ] && [ $i -lt 50 ]; do "
            f"sleep 0.1; i=$((i + 1)); done; [ -s {shlex.quote(d)}/watchdog.pid ]")


def install_key(key_line: str) -> str:
    """As the login user: the run's key into ~/.ssh/authorized_keys. Prints `sshdir` and
    `akfile` for what it had to create, then the file's path."""
    line = shlex.quote(key_line)
    return f"""set -e
ak="$HOME/.ssh/authorized_keys"
[ -d "$HOME/.ssh" ] || {{ mkdir -m 700 "$HOME/.ssh"; echo sshdir; }}
[ -e "$ak" ] || {{ : > "$ak"; chmod 600 "$ak"; echo akfile; }}
if ! grep -qxF {line} "$ak"; then
  if [ -s "$ak" ] && [ -n "$(tail -c 1 "$ak")" ]; then echo >> "$ak"; fi
  printf '%s\\n' {line} >> "$ak"
fi
echo "$ak"
"""


def record_put(d: str, remote: str) -> str:
    """Before a put outside the directory: note the file (and the first directory the put
    creates) in the manifest once, keeping a copy of a file that exists."""
    return f"""f={shlex.quote(remote)}; d={shlex.quote(d)}; m="$d/manifest"; seen=
if [ -f "$m" ]; then
  while read -r w rest; do
    case $w in
      new|newdir) [ "$rest" = "$f" ] && seen=1 ;;
      saved) [ "${{rest#* }}" = "$f" ] && seen=1 ;;
    esac
  done < "$m"
fi
if [ -z "$seen" ]; then
  p=$(dirname "$f"); top=
  while [ ! -e "$p" ]; do top=$p; p=$(dirname "$p"); done
  [ -z "$top" ] || echo "newdir $top" >> "$m"
  if [ -e "$f" ]; then
    n=$(cat "$m" 2>/dev/null | wc -l); mkdir -p "$d/saved"
    cp -a "$f" "$d/saved/$n" && echo "saved $n $f" >> "$m"
  else
    echo "new $f" >> "$m"
  fi
fi
"""


def restore_script(d: str, short: str, key_line: str, authorized_keys: str) -> str:
    """Undo what the run did on the machine (see the module's model). Prints one line per
    thing it removed or put back, `left ...` on stderr for what it could not; exits 0."""
    return _common(d, short) + f"""line={shlex.quote(key_line)}; ak={shlex.quote(authorized_keys)}
rm -f "$d/lease"
if [ "$1" != watchdog ] && [ -s "$d/watchdog.pid" ]; then
  kill "$(cat "$d/watchdog.pid")" 2>/dev/null
fi
pgrp() {{ sed 's/.*) //' "$1/stat" 2>/dev/null | cut -d' ' -f3; }}
me=$(pgrp /proc/$$)
for p in /proc/[0-9]*; do
  case "$(tr '\\0' ' ' < "$p/cmdline" 2>/dev/null)" in
    *"$d/"*) g=$(pgrp "$p")
      if [ -n "$g" ] && [ "$g" != "$me" ] && [ "$g" -gt 1 ] && kill -KILL -"$g" 2>/dev/null; then
        echo "killed process group $g"; fi ;;
  esac
done
if command -v nft >/dev/null 2>&1; then
  nft list tables 2>/dev/null | while read -r _ fam name; do
    case "$name" in
      repro[-_]"$short"|repro[-_]"$short"[-_]*) ;;
      repro*) [ -f "$d/baseline.nft" ] && ! grep -qxF "table $fam $name" "$d/baseline.nft" \\
                || continue ;;
      *) continue ;;
    esac
    nft delete table "$fam" "$name" && echo "removed nft table $fam $name"
  done
fi
if command -v tc >/dev/null 2>&1 && [ -f "$d/baseline.tc" ]; then
  while read -r dev kind handle; do
    [ -e "/sys/class/net/$dev" ] || continue
    now=$(tc qdisc show dev "$dev" root 2>/dev/null | {{ read -r _ k h _; echo "$k $h"; }})
    [ "$now" = "$kind $handle" ] && continue
    if [ "$handle" = "0:" ]; then
      tc qdisc del dev "$dev" root 2>/dev/null && echo "removed qdisc $now on $dev"
    else
      echo "left qdisc $now on $dev (it was $kind $handle)" >&2
    fi
  done < "$d/baseline.tc"
fi
if [ -f "$d/baseline.mtu" ]; then
  while read -r dev mtu; do
    [ -e "/sys/class/net/$dev" ] || continue
    now=$(cat "/sys/class/net/$dev/mtu")
    if [ "$now" != "$mtu" ]; then
      ip link set dev "$dev" mtu "$mtu" && echo "restored MTU $mtu on $dev (it was $now)"
    fi
  done < "$d/baseline.mtu"
fi
for i in /sys/class/net/rp"$short"*; do
  [ -e "$i" ] && ip link del "${{i##*/}}" && echo "removed interface ${{i##*/}}"
done
if [ -f "$d/manifest" ]; then
  while read -r what rest; do
    case $what in
      new) rm -f -- "$rest" && echo "removed $rest" ;;
      newdir) rm -rf -- "$rest" && echo "removed $rest" ;;
      saved) n=${{rest%% *}}; f=${{rest#* }}
        mv -f -- "$d/saved/$n" "$f" && echo "put back $f" ;;
    esac
  done < "$d/manifest"
fi
if [ -f "$ak" ] && grep -qxF "$line" "$ak"; then
  keep=$(grep -vxF "$line" "$ak")
  if [ -n "$keep" ]; then printf '%s\\n' "$keep" > "$ak"; else : > "$ak"; fi
  echo "removed the run's key from $ak"
fi
if [ -f "$d/akfile.created" ] && [ -f "$ak" ] && [ ! -s "$ak" ]; then
  rm -f "$ak" && echo "removed $ak"
fi
if [ -f "$d/sshdir.created" ]; then rmdir "${{ak%/*}}" 2>/dev/null && echo "removed ${{ak%/*}}"; fi
for f in "${{d%/*}}"/repro-"$short"-*; do
  [ -e "$f" ] && [ "$f" != "$d" ] && rm -rf -- "$f" && echo "removed $f"
done
if [ -e "$d" ]; then rm -rf "$d" && echo "removed $d"; fi
exit 0
"""
