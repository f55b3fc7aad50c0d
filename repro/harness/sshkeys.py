"""Login keys made for one run (Ed25519: ~10 ms), kept only in the run's scratch dir."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@dataclass(frozen=True)
class KeyPair:
    private_path: Path
    public_line: str  # authorized_keys line

    @property
    def private_bytes(self) -> bytes:
        return self.private_path.read_bytes()


def generate_keypair(path: Path, comment: str = "repro-run") -> KeyPair:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH)
    path.touch(mode=0o600)
    path.write_bytes(private)
    return KeyPair(private_path=path, public_line=f"{public.decode()} {comment}")
