"""The change feed over a WebSocket (`changes/ws`), on a Jupyter server and standalone."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from pluresdb_lab._database import Database
from pluresdb_lab.server.standalone import Background

ROUTE = ("pluresdb", "api", "changes/ws")


async def receive(socket: WebSocketClientConnection) -> dict[str, Any]:
    """The next message, parsed; fails after 20 s or when the socket closes."""
    message = await asyncio.wait_for(socket.read_message(), 20)
    assert message is not None, f"the socket closed ({socket.close_code} {socket.close_reason})"
    parsed: dict[str, Any] = json.loads(message)
    return parsed


async def test_writes_through_rest_arrive_on_the_socket(jp_ws_fetch: Any, api: Any) -> None:
    socket = await jp_ws_fetch(*ROUTE, params={"type": "Feed"})
    try:
        assert await receive(socket) == {"event": "ready"}
        assert (await api("PUT", "node/other", {"data": {"x": 0}, "type": "Other"}))[0] == 200
        assert (await api("PUT", "node/f1", {"data": {"x": 1}, "type": "Feed"}))[0] == 200
        assert (await api("DELETE", "node/f1"))[0] == 200
        put, deleted = await receive(socket), await receive(socket)
    finally:
        socket.close()
    assert put["event"] == "change"
    change = put["change"]
    assert (change["id"], change["type"], change["kind"], change["local"]) == (
        "f1",
        "Feed",
        "put",
        True,
    )
    assert change["node"]["data"] == {"x": 1}
    assert (deleted["change"]["id"], deleted["change"]["kind"]) == ("f1", "delete")
    assert deleted["change"]["node"] is None


async def test_id_filter_and_changes_before_the_first_read(
    jp_ws_fetch: Any, served_db: Database
) -> None:
    socket = await jp_ws_fetch(*ROUTE, params={"id": "one/ü"})
    try:
        served_db.put("two", {"v": 2})
        served_db.put("one/ü", {"v": 1})
        assert await receive(socket) == {"event": "ready"}
        change = (await receive(socket))["change"]
    finally:
        socket.close()
    assert (change["id"], change["node"]["data"]) == ("one/ü", {"v": 1})


@pytest.mark.parametrize("auth", ["", "token wrong-token"], ids=["no-token", "wrong-token"])
async def test_socket_without_the_token_is_refused(
    jp_ws_fetch: Any, served_db: Database, auth: str
) -> None:
    with pytest.raises(HTTPClientError) as refused:
        await jp_ws_fetch(*ROUTE, headers={"Authorization": auth})
    assert refused.value.code == 403


async def test_bad_filter_is_refused_before_the_upgrade(jp_ws_fetch: Any) -> None:
    with pytest.raises(HTTPClientError) as refused:
        await jp_ws_fetch(*ROUTE, params={"id": "nul\x00in id"})
    assert refused.value.code == 400


@pytest.fixture
def standalone() -> Iterator[Background]:
    db = Database(None)
    try:
        with Background(db, token="socket-token") as server:
            yield server
    finally:
        db.close()


async def test_standalone_socket_takes_the_token(standalone: Background) -> None:
    url = standalone.url.replace("http://", "ws://") + "changes/ws"
    with pytest.raises(HTTPClientError) as refused:
        await websocket_connect(url)
    assert refused.value.code == 403
    headers = {"Authorization": "token socket-token"}
    socket = await websocket_connect(HTTPRequest(url, headers=headers))
    try:
        assert await receive(socket) == {"event": "ready"}
        standalone.db.put("s", {"v": 1}, type="S")
        change = (await receive(socket))["change"]
    finally:
        socket.close()
    assert (change["id"], change["type"], change["kind"]) == ("s", "S", "put")
