"""API request bodies: the token and the size are judged from the headers before a byte of
the body is read, and a body over the limit gets a 413 JSON reply, not a reset connection.

The raw-socket tests send only the headers and wait for the reply: a server that reads
(buffers) the body first never answers, and the test fails on its 10 s socket timeout.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import select
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pytest
from traitlets.config import Config

from pluresdb_lab import errors
from pluresdb_lab.client import RemoteDatabase
from tests.server.conftest import TOKEN, start_serve, stop

HUGE = 100_000_000  # the review's unauthenticated 100 MB POST
LIMIT = 2**20  # `pluresdb serve --max-body-mib 1`
JUPYTER_LIMIT = 4096
NODES = "pluresdb/api/nodes"
REPLY_S = 10.0


def head(port: int, path: str, **headers: str | int) -> bytes:
    """A request's start line and headers, without its body."""
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def reply_of(raw: bytes) -> tuple[int, Any]:
    """(status, JSON body) of one complete HTTP response."""
    status_line, _, rest = raw.partition(b"\r\n")
    _, _, body = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(body)


def read_reply(sock: socket.socket) -> tuple[int, Any]:
    sock.settimeout(REPLY_S)
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, json.loads(response.read())


def peak_rss(pid: int) -> int:
    """The most resident memory a process has had (VmHWM), in bytes: a body buffered and
    freed again still shows here (it took the server from 246 to 438 MiB before the fix)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for process {pid}")


def push(sock: socket.socket, size: int) -> int:
    """Send up to `size` body bytes; how many went before the server closed the connection."""
    chunk, sent = b"x" * 2**20, 0
    try:
        while sent < size:
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:  # EPIPE / ECONNRESET: the server hung up, as it should
        pass
    return sent


@pytest.fixture(scope="module")
def limited(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`pluresdb serve --max-body-mib 1`: its process and API URL."""
    folder = tmp_path_factory.mktemp("limited")
    process, url = start_serve(folder / "db", folder / "serve.log", TOKEN, "--max-body-mib", "1")
    try:
        yield process, url
    finally:
        stop(process)


def test_a_body_without_the_token_is_refused_unread(
    limited: tuple[subprocess.Popen[bytes], str],
) -> None:
    process, url = limited
    port = urlsplit(url).port
    assert port is not None
    before = peak_rss(process.pid)
    with socket.create_connection(("127.0.0.1", port), timeout=REPLY_S) as sock:
        sock.sendall(head(port, "/" + NODES, Content_Length=HUGE))
        started = time.monotonic()
        status, reply = read_reply(sock)  # no byte of the body was sent
        assert time.monotonic() - started < REPLY_S
        assert status == 403
        assert reply["message"]
        sent = push(sock, HUGE)  # the server has hung up: the body goes nowhere
    grown = peak_rss(process.pid) - before
    assert sent < HUGE // 4
    assert grown < 16 * 2**20, f"the server grew by {grown:,} bytes"


def test_an_authenticated_body_over_the_limit_is_413_json(
    limited: tuple[subprocess.Popen[bytes], str],
) -> None:
    process, url = limited
    port = urlsplit(url).port
    assert port is not None
    before = peak_rss(process.pid)
    with socket.create_connection(("127.0.0.1", port), timeout=REPLY_S) as sock:
        sock.sendall(head(port, "/" + NODES, Content_Length=HUGE, Authorization=f"token {TOKEN}"))
        status, reply = read_reply(sock)
    assert status == 413
    assert reply["error"] == "InvalidDataError"
    assert "100,000,000 bytes" in reply["message"]
    assert f"{LIMIT:,} bytes" in reply["message"]
    assert "--max-body-mib" in reply["message"]
    assert peak_rss(process.pid) - before < 16 * 2**20


def test_a_chunked_body_is_cut_off_at_the_limit_with_413(
    limited: tuple[subprocess.Popen[bytes], str],
) -> None:
    _, url = limited
    port = urlsplit(url).port
    assert port is not None
    chunk = b"x" * 2**16
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=REPLY_S) as sock:
        sock.sendall(
            head(port, "/" + NODES, Transfer_Encoding="chunked", Authorization=f"token {TOKEN}")
        )
        sent = 0
        # Send until the server answers (it must, a little after LIMIT bytes); stop then,
        # so what is still in flight cannot reset the connection before the reply is read.
        while not select.select([sock], [], [], 0)[0]:
            assert sent <= 4 * LIMIT, "no reply although the body passed the limit"
            sock.sendall(framed)
            sent += len(chunk)
            select.select([sock], [], [], 0.001)
        status, reply = read_reply(sock)
    assert status == 413
    assert reply["error"] == "InvalidDataError"
    assert f"more than {LIMIT:,} bytes" in reply["message"]
    assert LIMIT <= sent <= 4 * LIMIT


def test_bodies_under_the_limit_work_and_remote_calls_over_it_raise(
    limited: tuple[subprocess.Popen[bytes], str],
) -> None:
    _, url = limited
    with RemoteDatabase(url, token=TOKEN) as db:
        small = pa.table({"id": [f"s{i}" for i in range(1000)], "v": list(range(1000))})
        assert db.put_many(small, type="Small") == 1000  # ~20 KB of Arrow IPC
        big = pa.table({"id": [f"b{i}" for i in range(40_000)], "text": ["y" * 40] * 40_000})
        assert db.max_body_bytes == LIMIT  # from the server, which would answer 413
        with pytest.raises(errors.InvalidDataError, match="over the server's limit"):
            db.put_many(big, type="Big")  # ~2 MB of Arrow IPC: refused before sending
        assert db.count("Big") == 0
        assert db.count("Small") == 1000


# -- the Jupyter extension: Jupyter's auth, and `PluresDBApp.max_body_bytes` ----------------


@pytest.fixture
def jp_server_config(jp_server_config: Config) -> Config:
    jp_server_config.PluresDBApp.max_body_bytes = JUPYTER_LIMIT
    return jp_server_config


async def jupyter_reply(port: int, path: str, **headers: str | int) -> tuple[int, Any]:
    """Send only the headers to the in-process server and read its reply."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head(port, path, **headers))
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(2**16), REPLY_S)
        while b"\r\n\r\n" not in raw or not raw.rstrip().endswith(b"}"):
            more = await asyncio.wait_for(reader.read(2**16), REPLY_S)
            assert more, f"the connection closed mid-reply: {raw!r}"
            raw += more
        return reply_of(raw)
    finally:
        writer.close()


async def test_jupyter_refuses_before_reading_and_answers_413(
    api: Any, jp_http_port: int, jp_base_url: str, jp_auth_header: dict[str, str]
) -> None:
    path = f"{jp_base_url}{NODES}"
    status, reply = await jupyter_reply(jp_http_port, path, Content_Length=HUGE)
    assert status == 403
    status, reply = await jupyter_reply(
        jp_http_port, path, Content_Length=HUGE, Authorization=jp_auth_header["Authorization"]
    )
    assert status == 413
    assert reply["error"] == "InvalidDataError"
    assert "PluresDBApp.max_body_bytes" in reply["message"]
    status, reply = await api("PUT", "node/n", {"data": {"x": "y" * (JUPYTER_LIMIT // 2)}})
    assert status == 200
