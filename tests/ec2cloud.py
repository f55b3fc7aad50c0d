"""EC2 for the tests: moto's server for the API, Docker containers as the instances' bodies.

Model: moto (ThreadedMotoServer on 127.0.0.1 only) keeps the API's state:
instances, tags, attributes, user data. It has no data plane, so FakeCloud
plays the hypervisor: a thread polls moto and gives every pending or running
instance a body, a container of the Docker image its AMI stands for (an AMI
registered with `register(None)` never gets one: an instance that never
boots), started at the instance's private address on a Docker network whose
subnet *is* the instance's moto subnet, so the runner reaches it the way it
reaches a real instance. The body runs the instance's user data as root at
boot (as cloud-init does), with `poweroff`/`halt` meaning "stop the machine"
(PID 1 ends). A body that stopped while moto still has its instance running
is an instance-initiated shutdown: the hypervisor applies the instance's
InstanceInitiatedShutdownBehavior through the API (terminate or stop), as
EC2 does. Instances that moto says are terminated lose their body.

Everything is named repro-<short>-... and labelled with the test's run id,
so `repro cleanup` removes what a crashed test left.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import random
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import docker
import docker.errors
import docker.types

from repro.harness import names
from repro.harness.hosts.docker import BASE_IMAGE, client, cpu_cap
from repro.harness.run import Run

HALT_SHIM = b"#!/bin/sh\n# the machine stops: PID 1 ends\nkill -TERM 1\n"
STEP_S = 0.2


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's EC2 API on 127.0.0.1 at a free port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.214.0.0/16 (QEMU runs use 10.213/16) that no route here touches."""
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, timeout=10,
                            check=False).stdout
    used = [ipaddress.ip_network(w, strict=False) for w in routes.split()
            if "/" in w and w[0].isdigit()]
    choices = list(range(256))
    random.shuffle(choices)
    for x in choices:
        net = ipaddress.ip_network(f"10.214.{x}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("no free /24 in 10.214.0.0/16")


@dataclass
class FakeCloud:
    run: Run
    region: str
    ec2: Any = None
    dc: Any = None
    subnet_id: str = ""
    amis: dict[str, str | None] = field(default_factory=dict)   # AMI -> Docker image
    bodies: dict[str, Any] = field(default_factory=dict)        # instance -> container
    halted: list[str] = field(default_factory=list)             # instance-initiated shutdowns
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _network: Any = None

    def start(self) -> FakeCloud:
        self.ec2 = boto3.client("ec2", region_name=self.region)
        self.dc = client()
        cidr = free_subnet()
        self._network = self.dc.networks.create(
            self.run.name("ec2net"), driver="bridge", labels=names.run_labels(self.run.run_id),
            options={"com.docker.network.bridge.name": self.run.iface("ec2")},
            ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
                subnet=str(cidr), gateway=str(cidr.network_address + 1))]))
        vpc = self.ec2.create_vpc(CidrBlock="10.214.0.0/16")["Vpc"]["VpcId"]
        self.subnet_id = self.ec2.create_subnet(VpcId=vpc, CidrBlock=str(cidr))["Subnet"][
            "SubnetId"]
        self._thread = threading.Thread(target=self._loop, name="fake-ec2", daemon=True)
        self._thread.start()
        return self

    def register(self, image: str | None = BASE_IMAGE) -> str:
        ami = self.ec2.register_image(Name=f"repro-test-{len(self.amis)}",
                                      RootDeviceName="/dev/xvda")["ImageId"]
        self.amis[ami] = image
        return str(ami)

    def state(self, instance_id: str) -> str:
        r = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        return str(r[0]["Instances"][0]["State"]["Name"])

    def _loop(self) -> None:
        while not self._stop.wait(STEP_S):
            try:
                self.step()
            except Exception as exc:  # kept for the test to see, the loop goes on
                self.errors.append(f"{type(exc).__name__}: {exc}")

    def step(self) -> None:
        for r in self.ec2.describe_instances()["Reservations"]:
            for inst in r["Instances"]:
                iid, state = inst["InstanceId"], inst["State"]["Name"]
                body = self.bodies.get(iid)
                if state in ("pending", "running") and body is None:
                    image = self.amis.get(inst["ImageId"])
                    if image:
                        self.bodies[iid] = self._boot(iid, image, inst["PrivateIpAddress"])
                elif state in ("pending", "running") and body is not None:
                    body.reload()
                    if body.status == "exited":  # the machine halted itself
                        self.halted.append(iid)
                        how = self.ec2.describe_instance_attribute(
                            InstanceId=iid, Attribute="instanceInitiatedShutdownBehavior")
                        if how["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate":
                            self.ec2.terminate_instances(InstanceIds=[iid])
                        else:
                            self.ec2.stop_instances(InstanceIds=[iid])
                elif body is not None:  # shutting-down, terminated, stopping, stopped
                    with contextlib.suppress(docker.errors.NotFound):
                        body.remove(force=True)
                    del self.bodies[iid]

    def _boot(self, iid: str, image: str, address: str) -> Any:
        body = self.dc.containers.create(
            image, name=self.run.name(iid), hostname=iid, detach=True,
            labels=names.run_labels(self.run.run_id), network=self._network.name,
            cap_add=["NET_ADMIN", "NET_RAW"], sysctls={"net.netfilter.nf_conntrack_acct": "1"},
            # instances are other machines: leave the observer its CPU, as Docker hosts do
            nano_cpus=int(cpu_cap(2) * 1e9))
        self._network.disconnect(body)
        self._network.connect(body, ipv4_address=address)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name in ("poweroff", "halt"):
                info = tarfile.TarInfo(f"usr/local/sbin/{name}")
                info.size, info.mode = len(HALT_SHIM), 0o755
                tar.addfile(info, io.BytesIO(HALT_SHIM))
        body.put_archive("/", buf.getvalue())
        body.start()
        raw = self.ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")
        script = raw.get("UserData", {}).get("Value")
        if script:
            import base64
            body.exec_run(["sh", "-c", base64.b64decode(script).decode()], detach=False)
        return body

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
        for body in self.bodies.values():
            with contextlib.suppress(docker.errors.NotFound):
                body.remove(force=True)
        self.bodies.clear()
        if self._network is not None:
            with contextlib.suppress(docker.errors.NotFound):
                self._network.remove()
