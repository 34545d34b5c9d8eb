"""A database's peer identity: an Ed25519 key pair; the peer id is a hash of the public key.

The key lives in the data folder (`identity.key`, readable by its owner only) and is
made when the folder is first opened; an in-memory database gets a fresh key. Ops are
stamped with the peer id, and the mesh handshake proves possession of the key.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from pluresdb_lab.errors import CorruptDatabaseError

KEY_FILE = "identity.key"


def peer_id_of(public_key: bytes) -> str:
    """The peer id a public key stands for (16 hex characters)."""
    return hashlib.blake2b(public_key, digest_size=8).hexdigest()


def verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Whether `signature` over `message` was made with the key behind `public_key`."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


class Identity:
    """The key pair of one database."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key: bytes = private_key.public_key().public_bytes(
            Encoding.Raw, PublicFormat.Raw
        )
        self.peer_id = peer_id_of(self.public_key)

    def sign(self, message: bytes) -> bytes:
        signature: bytes = self._key.sign(message)
        return signature

    @classmethod
    def load_or_create(cls, folder: Path | None) -> Identity:
        if folder is None:
            return cls(Ed25519PrivateKey.generate())
        path = folder / KEY_FILE
        if path.exists():
            raw = path.read_bytes()
            if len(raw) != 32:
                raise CorruptDatabaseError(
                    f"identity key {path} is {len(raw)} bytes, not 32; restore it from a backup"
                )
            return cls(Ed25519PrivateKey.from_private_bytes(raw))
        key = Ed25519PrivateKey.generate()
        raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, raw)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        return cls(key)
