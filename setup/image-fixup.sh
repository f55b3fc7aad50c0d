# Run inside the freshly debootstrapped root (chroot) before docker import.
# Host keys are baked once per image (Ed25519 only: ~10 ms to make, RSA ~0.9 s);
# login keys are made per run by the harness and never stored in the image.
set -e
rm -f /etc/ssh/ssh_host_*
ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
mkdir -p /run/sshd /root/.ssh && chmod 700 /root/.ssh
cat > /etc/ssh/sshd_config.d/repro.conf <<'CONF'
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
# MaxStartups stays at the default 10:30:100 on purpose: the incident's flood meets it.
CONF
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
