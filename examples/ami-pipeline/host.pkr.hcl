# The build-host AMI with its host init baked in (the configuration under test
# lives in the image, as it does in production). `packer build` prints the AMI id.
packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.3.0"
    }
  }
}

variable "region" { type = string }
variable "source_ami" { type = string }   # e.g. Debian 12's official cloud image
variable "host_init" { type = string }    # path to the host init script under test
variable "version" { type = string }

source "amazon-ebs" "host" {
  region        = var.region
  source_ami    = var.source_ami
  instance_type = "t3.small"
  ssh_username  = "admin"
  ami_name      = "build-host-${var.version}"
  tags = {
    Name            = "build-host-${var.version}"
    "repro:gate"    = "pending"        # the gate sets passed/blocked
  }
}

build {
  sources = ["source.amazon-ebs.host"]

  provisioner "file" {
    source      = var.host_init
    destination = "/tmp/host-init.sh"
  }

  provisioner "shell" {
    inline = [
      "sudo install -D -m 0755 /tmp/host-init.sh /etc/repro/host-init.sh",
      # run the host init at every boot, before sshd accepts logins
      "printf '[Unit]\\nDescription=host init\\nBefore=ssh.service\\nAfter=network-online.target\\nWants=network-online.target\\n[Service]\\nType=oneshot\\nExecStart=/bin/sh /etc/repro/host-init.sh\\n[Install]\\nWantedBy=multi-user.target\\n' | sudo tee /etc/systemd/system/host-init.service",
      "sudo systemctl enable host-init.service",
      "sudo apt-get update -q && sudo apt-get install -y -q nftables iproute2 procps psmisc",
      "sudo cloud-init clean",
    ]
  }
}
