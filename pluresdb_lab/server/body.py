"""Request bodies taken as they stream in, under a size limit, only from authenticated callers.

Tornado would otherwise read a whole body (up to its server-wide cap) before a handler
runs, so anyone could make the server hold 100 MB without a token, and a body over
the cap got a reset connection instead of an answer. ApiHandler streams instead: its
`prepare()` checks the token and the declared Content-Length from the headers, and a
body that turns out larger than the limit while arriving is answered 413 at once.
"""

from __future__ import annotations

from tornado.httputil import HTTPServerRequest

from pluresdb_lab.server.errors import ApiError

DEFAULT_MAX_BODY_BYTES = 64 * 2**20  # a bulk Arrow write of ~1M narrow rows fits
HOW_TO_RAISE = (
    "send it in smaller batches, or have the server's operator raise the limit "
    "(`pluresdb serve --max-body-mib N`, or `c.PluresDBApp.max_body_bytes` on a Jupyter server)"
)


def has_body(request: HTTPServerRequest) -> bool:
    """Whether the request announces a body (a non-zero Content-Length, or chunks)."""
    if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        return True
    return request.headers.get("Content-Length", "0").strip() not in ("", "0")


def declared_size(request: HTTPServerRequest) -> int | None:
    """The Content-Length as a number (None without one; tornado rejects malformed ones)."""
    raw = request.headers.get("Content-Length")
    try:
        return None if raw is None else int(raw)
    except ValueError:
        return None


def too_large(size: int, limit: int, *, declared: bool) -> ApiError:
    """The 413 reply for a body over `limit` bytes."""
    amount = f"{size:,} bytes" if declared else f"more than {limit:,} bytes"
    return ApiError(
        413,
        "InvalidDataError",
        f"the request body ({amount}) is over this server's limit of {limit:,} bytes; "
        + HOW_TO_RAISE,
    )


class Body:
    """The chunks of one request body, kept until they pass `limit` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.received = 0
        self._chunks: list[bytes] = []
        self._joined: bytes | None = None

    def add(self, chunk: bytes) -> bool:
        """Keep `chunk`; False (and nothing kept any more) once the body passes the limit."""
        self.received += len(chunk)
        if self.received > self.limit:
            self._chunks.clear()
            return False
        self._chunks.append(chunk)
        return True

    def bytes(self) -> bytes:
        if self._joined is None:
            self._joined = b"".join(self._chunks)
            self._chunks = [self._joined]
        return self._joined
