"""Hosts: one Host protocol, backends chosen by URL scheme.

  docker://            containers from the base image on a bridge network of the run
  qemu://              virtual machines with their own Debian kernel
  ec2://ami-...        EC2 instances from an AMI

(`ssh://user@host:port`, existing machines, is planned: not a backend yet.)

`open_hosts(provider, roles, run)` is a context manager yielding {role: Host};
it removes every host it started, also when starting one of them failed.
"""

from repro.hosts.base import CommandResult, Host, open_hosts

__all__ = ["CommandResult", "Host", "open_hosts"]
