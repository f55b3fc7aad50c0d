"""Hosts: one Host protocol, backends chosen by URL scheme.

  docker://            containers from the base image on a bridge network of the run
  qemu://              virtual machines with their own Debian kernel
  ec2://ami-...        EC2 instances from an AMI
  ssh://user@host:port existing machines, borrowed: the [hosts] table maps roles to them;
                       what the run changed is put back, the machine is never removed
                       (docs/ssh.md)

QEMU, EC2 and ssh hosts share one ssh-based host (repro.harness.hosts.sshhost).

`open_hosts(provider, roles, run)` is a context manager yielding {role: Host};
it removes every host it started (puts a borrowed one back as it was), also when
starting one of them failed.
"""

from repro.harness.hosts.base import CommandResult, Host, open_hosts

__all__ = ["CommandResult", "Host", "open_hosts"]
