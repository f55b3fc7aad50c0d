"""What runs on the monitored guest: the node exporter (every boot) and the server process
(the first boot only).

Model. The guest's init is busybox init (repro.harness.hosts.qemu.guest): it starts what
/etc/inittab lists, at every boot, and re-reads that file on SIGHUP. The node exporter
(Debian's prometheus-node-exporter, baked into the image) is installed as a boot service
the way a machine image would have it: one `respawn` line appended to /etc/inittab, synced
to disk (the panic must not lose it), and init told to re-read it, which starts it now;
after the panic the rebooted kernel's init starts it again by itself.

The "server process" is what the postmortem's fix watched: a process that says it is
alive by refreshing a textfile-collector metric, `server_heartbeat_timestamp_seconds`
(the guest's clock, once a second, written atomically to
/var/lib/prometheus/node-exporter/server.prom). The harness starts it once, after the
first boot, as the servers' provisioning did; nothing starts it at boot ("we do not set up
our servers to automatically rejoin the cluster on reboot"), so after the panic it is
gone, and its last heartbeat stays on disk, going stale.
"""

from __future__ import annotations

import urllib.request

from repro.harness import procs
from repro.harness.hosts.base import Host

PORT = 9100
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"
HEARTBEAT_METRIC = "server_heartbeat_timestamp_seconds"
# The collectors a small fleet dashboard reads, boot time (stat) and textfile among them.
# Not all the defaults: on a TCG guest a scrape of all of them took 0.17-0.32 s of its one
# CPU idle and over the 1 s scrape timeout on a loaded runner (every scrape failed: up == 0
# for a minute); these take 0.3-0.7 s for the first scrapes (TCG translating fresh code)
# and 35-60 ms after that (measured).
COLLECTORS = " ".join(f"--collector.{c}" for c in (
    "disable-defaults", "stat", "textfile", "cpu", "loadavg", "meminfo", "uname", "time",
    "filesystem", "netdev"))
EXPORTER = (f"/usr/bin/prometheus-node-exporter --web.listen-address=:{PORT} {COLLECTORS} "
            f"--collector.textfile.directory={TEXTFILE_DIR} "
            ">>/var/log/repro-node-exporter.log 2>&1")
SERVER_PATH = "/usr/local/lib/repro-server.sh"
SERVER = f"""#!/bin/sh
# the server process's heartbeat (reboot_blindspot): started once, never at boot
d={TEXTFILE_DIR}
while :; do
    {{ echo '# HELP {HEARTBEAT_METRIC} When the server process last said it was alive.'
      echo '# TYPE {HEARTBEAT_METRIC} gauge'
      echo "{HEARTBEAT_METRIC} $(date +%s.%N)"; }} > "$d/.server.prom.tmp"
    mv "$d/.server.prom.tmp" "$d/server.prom"
    sleep 1
done
"""
# one round trip: the exporter's inittab line (synced: the panic must not lose it), init
# told to re-read inittab (which starts the exporter), then the server process, once
PROVISION = f"""set -e
grep -q prometheus-node-exporter /etc/inittab || echo '::respawn:{EXPORTER}' >> /etc/inittab
mkdir -p {TEXTFILE_DIR} "$(dirname {SERVER_PATH})"
cat > {SERVER_PATH} <<'REPRO_SERVER'
{SERVER}REPRO_SERVER
chmod 755 {SERVER_PATH}
sync
kill -HUP 1
setsid nohup sh {SERVER_PATH} >/dev/null 2>&1 < /dev/null &
echo $!"""
DIAGNOSE = (f"ps -o pid,stat,time,args | grep -e node-exporter -e repro-server | grep -v grep; "
            f"ls -l {TEXTFILE_DIR}; tail -n 3 /var/log/repro-node-exporter.log; uptime")
CMD_TIMEOUT_S = 60.0  # a TCG guest on a loaded runner can take tens of seconds
EXPORTER_TIMEOUT_S = 90.0  # measured: over 60 s to start on a TCG guest at load 8


def metrics(address: str, timeout: float = 2.0) -> str:
    """The exporter's /metrics text, or "" when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://{address}:{PORT}/metrics", timeout=timeout) as r:
            return str(r.read().decode(errors="replace"))
    except (OSError, ValueError):
        return ""


def provision(host: Host, address: str) -> int:
    """The exporter as a boot service and the server process, once; returns the server's
    pid once the exporter answers from the runner with the server's heartbeat in it.
    TimeoutError (with what the guest says of them) when it does not."""
    pid = int(host.run(PROVISION, timeout=CMD_TIMEOUT_S).stdout.strip().splitlines()[-1])
    try:
        procs.wait_for(lambda: f"\n{HEARTBEAT_METRIC} " in metrics(address),
                       timeout=EXPORTER_TIMEOUT_S, interval=0.2,
                       what=f"the node exporter on {address}:{PORT} with the server heartbeat")
    except TimeoutError as exc:
        said = host.run(DIAGNOSE, timeout=20, check=False)
        raise TimeoutError(f"{exc}; the guest says: "
                           + " | ".join((said.stdout + said.stderr).split("\n")[-8:])) from exc
    return pid
