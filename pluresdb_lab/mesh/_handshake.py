"""The mesh handshake: prove the Ed25519 key behind a peer id, and the mesh secret.

Each side sends ``hello`` with a fresh nonce, then ``auth``: a signature over the
transcript (both nonces and both public keys, verifier's nonce first) and, when a
mesh secret is configured, an HMAC-SHA256 of the same transcript keyed by the secret.
Binding both nonces and keys to the signature stops replays and relayed handshakes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from pluresdb_lab.engine._identity import Identity, peer_id_of, verify
from pluresdb_lab.errors import PeerRefusedError
from pluresdb_lab.mesh._protocol import NONCE_BYTES, VERSION, Frame, ProtocolViolation, encode

SIGN_CONTEXT = b"pluresdb-mesh/1 auth\x00"
MAC_CONTEXT = b"pluresdb-mesh/1 secret\x00"


@dataclass(frozen=True, slots=True)
class Hello:
    """What a peer said about itself in its hello frame."""

    peer_id: str
    public_key: bytes
    nonce: bytes


@dataclass(frozen=True, slots=True)
class Policy:
    """Who a link accepts: the allow-list, the mesh secret, a pinned and blocked ids."""

    allow: frozenset[str]
    secret: bytes | None
    pinned: str | None = None
    blocked: frozenset[str] = frozenset()


def new_nonce() -> bytes:
    return os.urandom(NONCE_BYTES)


def hello_frame(identity: Identity, nonce: bytes) -> bytes:
    return encode("hello", v=VERSION, peer=identity.peer_id, key=identity.public_key, nonce=nonce)


def read_hello(frame: Frame) -> Hello:
    """Check a hello frame; raises ProtocolViolation or PeerRefusedError."""
    if frame["t"] != "hello":
        raise ProtocolViolation(f"a {frame['t']!r} frame before hello")
    if frame["v"] != VERSION:
        raise PeerRefusedError(f"protocol version {frame['v']}; this peer speaks {VERSION}")
    if len(frame["key"]) != 32 or len(frame["nonce"]) != NONCE_BYTES:
        raise ProtocolViolation("a hello whose key or nonce has the wrong length")
    if peer_id_of(frame["key"]) != frame["peer"]:
        raise PeerRefusedError(f"peer id {frame['peer'][:32]!r} does not match its public key")
    return Hello(frame["peer"], frame["key"], frame["nonce"])


def _transcript(verifier_nonce: bytes, signer: Hello, verifier_key: bytes) -> bytes:
    return verifier_nonce + signer.nonce + signer.public_key + verifier_key


def auth_frame(identity: Identity, mine: Hello, theirs: Hello, secret: bytes | None) -> bytes:
    """Our proof for the peer that sent `theirs`."""
    transcript = _transcript(theirs.nonce, mine, theirs.public_key)
    mac = hmac.digest(secret, MAC_CONTEXT + transcript, hashlib.sha256) if secret else None
    return encode("auth", sig=identity.sign(SIGN_CONTEXT + transcript), mac=mac)


def check_auth(frame: Frame, mine: Hello, theirs: Hello, policy: Policy) -> None:
    """Accept the peer behind `theirs`, or raise PeerRefusedError saying why."""
    if frame["t"] != "auth":
        raise ProtocolViolation(f"a {frame['t']!r} frame before the handshake finished")
    transcript = _transcript(mine.nonce, theirs, mine.public_key)
    if not verify(theirs.public_key, frame["sig"], SIGN_CONTEXT + transcript):
        raise PeerRefusedError(f"peer {theirs.peer_id} sent a bad handshake signature")
    peer = theirs.peer_id
    if peer in policy.blocked:
        raise PeerRefusedError(f"peer {peer} was disconnected; connect() to it again first")
    if policy.pinned is not None and peer != policy.pinned:
        raise PeerRefusedError(f"expected peer {policy.pinned} at this address, got {peer}")
    if peer in policy.allow or peer == policy.pinned:
        return
    if policy.secret is not None:
        mac = frame["mac"]
        expected = hmac.digest(policy.secret, MAC_CONTEXT + transcript, hashlib.sha256)
        if mac is not None and hmac.compare_digest(mac, expected):
            return
        raise PeerRefusedError(f"peer {peer} did not prove the mesh secret")
    raise PeerRefusedError(f"peer {peer} is not on the allow-list; db.mesh.allow() it first")
