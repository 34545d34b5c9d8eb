"""A deeply nested request body, JSON or msgpack, is a 400 with a readable message, never
a 500 from a RecursionError (or msgpack's message-less StackError)."""

from __future__ import annotations

from typing import Any

from pluresdb_lab import _wire
from pluresdb_lab._database import Database

DEEP = 100_000
MSGPACK = {"Content-Type": _wire.MSGPACK}


def deep_json(depth: int) -> bytes:
    return b'{"data": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"


async def test_deeply_nested_bodies_are_400(api: Any, served_db: Database) -> None:
    cases: list[tuple[str, str, bytes, dict[str, str]]] = [
        ("PUT", "node/n", deep_json(DEEP), {}),
        ("POST", "nodes", b"[" * DEEP + b"]" * DEEP, {}),
        ("POST", "nodes/get", b'{"ids": ' + b"[" * DEEP + b"]" * DEEP + b"}", {}),
        ("PUT", "node/n", b"\x81\xa4data" + b"\x81\xa1a" * DEEP + b"\x01", MSGPACK),
        ("PUT", "ops", b"\x91" * DEEP + b"\xc0", MSGPACK),
        ("POST", "ops", b"\x81\xa5since" + b"\x91" * DEEP + b"\xc0", MSGPACK),
    ]
    for method, route, body, headers in cases:
        status, reply = await api(method, route, body, headers=headers)
        assert (status, reply["error"]) == (400, "InvalidDataError"), (route, reply)
        assert "nested too deeply" in reply["message"], reply


async def test_nesting_just_under_the_parsers_limits_is_never_a_500(
    api: Any, served_db: Database
) -> None:
    # Deep enough to stress the engine's own recursion, shallow enough to parse.
    for body, headers in [
        (deep_json(900), {}),
        (b"\x81\xa4data" + b"\x81\xa1a" * 1000 + b"\x01", MSGPACK),
    ]:
        status, reply = await api("PUT", "node/n", body, headers=headers)
        assert status in (200, 400), reply
        if status == 400:
            assert reply["error"] == "InvalidDataError"
            assert reply["message"]
