"""A hand-written mesh client for hostile-input tests: it speaks the wire protocol
directly (msgpack + Ed25519 + HMAC), independent of `pluresdb_lab.mesh`, so it can lie."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import zlib
from dataclasses import dataclass, field
from typing import Any

import msgpack
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError, websocket_connect

SIGN = b"pluresdb-mesh/1 auth\x00"
MAC = b"pluresdb-mesh/1 secret\x00"


@dataclass
class RawPeer:
    """One raw connection; counts the payload bytes it really sent and received."""

    url: str
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    connection: WebSocketClientConnection | None = None
    bytes_sent: int = 0
    bytes_received: int = 0

    @property
    def public_key(self) -> bytes:
        return self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def peer_id(self) -> str:
        return hashlib.blake2b(self.public_key, digest_size=8).hexdigest()

    async def open(self) -> None:
        self.connection = await websocket_connect(self.url, max_message_size=64 << 20)

    async def send_raw(self, data: bytes | str) -> None:
        assert self.connection is not None
        self.bytes_sent += len(data)
        await self.connection.write_message(data, binary=isinstance(data, bytes))

    async def send(self, **frame: Any) -> None:
        await self.send_raw(msgpack.packb(frame, use_bin_type=True))

    async def receive(self) -> dict[str, Any] | None:
        """The next frame, or None once the server closed the connection."""
        assert self.connection is not None
        data = await self.connection.read_message()
        if data is None:
            return None
        assert isinstance(data, bytes)
        self.bytes_received += len(data)
        frame: dict[str, Any] = msgpack.unpackb(data, raw=False, strict_map_key=False)
        return frame

    async def handshake(
        self, secret: str | None, *, bad_signature: bool = False, claimed_id: str | None = None
    ) -> dict[str, Any] | None:
        """Hello + auth; returns the server's first frame after its auth (or None if closed)."""
        await self.open()
        nonce = os.urandom(32)
        peer = claimed_id or self.peer_id
        await self.send(t="hello", v=1, peer=peer, key=self.public_key, nonce=nonce)
        theirs = await self.receive()
        assert theirs is not None
        assert theirs["t"] == "hello"
        transcript = theirs["nonce"] + nonce + self.public_key + theirs["key"]
        sig = os.urandom(64) if bad_signature else self.key.sign(SIGN + transcript)
        mac = hmac.digest(secret.encode(), MAC + transcript, "sha256") if secret else None
        with contextlib.suppress(WebSocketClosedError):  # it may refuse our hello at once
            await self.send(t="auth", sig=sig, mac=mac)
        their_auth = await self.receive()
        if their_auth is None or their_auth["t"] != "auth":
            return their_auth
        return await self.receive()

    async def ping_forever(self, every_s: float) -> None:
        """Send a ping every `every_s` seconds and read nothing, so the peer keeps
        hearing from us while we read none of its frames. (Tornado's client takes bytes
        off the socket only while `read_message` is awaited: its read queue holds one
        message, so while `receive` is not called the socket is not read.)"""
        n = 0
        while True:
            n += 1
            await self.send(t="ping", n=n)
            await asyncio.sleep(every_s)  # the heartbeat's period, not a synchronisation

    async def closed(self) -> bool:
        """Read until the server closes; True when it did."""
        while (frame := await self.receive()) is not None:
            if frame["t"] == "refused":
                continue
        return True


def ops_of(frame: dict[str, Any]) -> list[dict[str, Any]]:
    """The ops a `batch` or `live` frame carries."""
    blob = zlib.decompress(frame["ops"]) if frame["z"] else frame["ops"]
    ops: list[dict[str, Any]] = msgpack.unpackb(blob, raw=False, strict_map_key=False)
    return ops
