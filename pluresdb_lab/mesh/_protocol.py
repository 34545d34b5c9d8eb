"""Mesh frames: msgpack maps with a type tag, checked field by field on the way in.

Every frame is one binary WebSocket message holding a msgpack map whose ``t`` names
the message. Ops travel packed (a msgpack array of op dicts), zlib-compressed when
the packed array exceeds `COMPRESS_ABOVE` bytes. A frame that is not a map, has an
unknown ``t`` or a field of the wrong type raises `ProtocolViolation`.
"""

from __future__ import annotations

import zlib
from typing import Any

import msgpack

from pluresdb_lab.errors import MeshError

VERSION = 1
COMPRESS_ABOVE = 4096
NONCE_BYTES = 32

Frame = dict[str, Any]

# message type -> required fields and their types
FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "hello": {"v": int, "peer": str, "key": bytes, "nonce": bytes},
    "auth": {"sig": bytes, "mac": (bytes, type(None))},
    "refused": {"reason": str},
    "vv": {"vv": dict, "reply": bool},
    "batch": {"ops": bytes, "z": bool, "done": int, "total": int},
    "live": {"ops": bytes, "z": bool},
    "ping": {"n": int},
    "pong": {"n": int},
}
# message type -> non-negative int fields that may be absent
OPTIONAL_COUNTS: dict[str, tuple[str, ...]] = {"vv": ("round",), "batch": ("round",)}


class ProtocolViolation(MeshError):
    """A frame a well-behaved peer never sends; the link that carried it is closed."""


def encode(kind: str, **fields: Any) -> bytes:
    """One frame, ready to send."""
    return msgpack.packb({"t": kind, **fields}, use_bin_type=True)  # type: ignore[no-any-return]


def decode(data: bytes | str) -> Frame:
    """Parse and check one received frame; raises ProtocolViolation."""
    if not isinstance(data, bytes):
        raise ProtocolViolation("a text frame; mesh frames are binary msgpack")
    try:
        frame = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:
        raise ProtocolViolation(f"a frame that is not valid msgpack ({exc})") from None
    if not isinstance(frame, dict):
        raise ProtocolViolation(f"a frame that is a {type(frame).__name__}, not a map")
    kind = frame.get("t")
    fields = FIELDS.get(kind) if isinstance(kind, str) else None
    if fields is None:
        raise ProtocolViolation(f"a frame of unknown type {str(kind)[:40]!r}")
    for name, expected in fields.items():
        value = frame.get(name)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ProtocolViolation(f"a {kind!r} frame whose field {name!r} is missing or wrong")
    for name in OPTIONAL_COUNTS.get(str(kind), ()):
        value = frame.get(name, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ProtocolViolation(f"a {kind!r} frame whose field {name!r} is wrong")
    if kind == "vv":
        check_vv(frame["vv"])
    return frame


def check_vv(vv: dict[Any, Any]) -> dict[str, int]:
    """A version vector from a peer: peer id -> non-negative count."""
    for key, value in vv.items():
        if not isinstance(key, str) or not isinstance(value, int) or isinstance(value, bool):
            raise ProtocolViolation("a version vector that does not map peer ids to counts")
        if value < 0:
            raise ProtocolViolation("a version vector with a negative count")
    return vv


def pack_ops(ops: list[dict[str, Any]]) -> tuple[bytes, bool]:
    """Ops as one blob, and whether it is compressed."""
    blob: bytes = msgpack.packb(ops, use_bin_type=True)
    if len(blob) > COMPRESS_ABOVE:
        return zlib.compress(blob, 1), True
    return blob, False


def unpack_ops(blob: bytes, compressed: bool, limit: int) -> list[Any]:
    """The ops of a `batch` or `live` frame; at most `limit` bytes once inflated."""
    if compressed:
        inflater = zlib.decompressobj()
        try:
            blob = inflater.decompress(blob, limit)
        except zlib.error as exc:
            raise ProtocolViolation(f"ops that do not inflate ({exc})") from None
        if inflater.unconsumed_tail or not inflater.eof:
            raise ProtocolViolation(f"ops that inflate past {limit} bytes or are truncated")
    try:
        ops = msgpack.unpackb(blob, raw=False, strict_map_key=False)
    except Exception as exc:
        raise ProtocolViolation(f"ops that are not valid msgpack ({exc})") from None
    if not isinstance(ops, list):
        raise ProtocolViolation("ops that are not a list")
    return ops
