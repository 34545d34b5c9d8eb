"""The HTTP transport of RemoteDatabase: httpx's API over the standard library's http.client.

A remote call is one small request on a kept-alive loopback or LAN connection, so the
per-call work of the client decides much of its latency, and httpx's own transport
(httpcore, h11) spends several times the CPU of http.client per request. Connections
are kept per origin with TCP_NODELAY set (so a small body is not held back by Nagle's
algorithm), and a kept connection that the server closed meanwhile is noticed before
it is reused.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
from collections.abc import Callable, Iterator

import httpx

CHUNK = 1 << 16
MAX_IDLE = 8
NETWORK_ERRORS = (OSError, http.client.HTTPException)

Origin = tuple[str, str, int]


class Transport(httpx.BaseTransport):
    """Keep-alive HTTP/1.1 connections for an `httpx.Client`.

    Args:
        tls: makes the TLS context for https:// URLs (called on the first https call).
    """

    def __init__(self, tls: Callable[[], ssl.SSLContext]) -> None:
        self._tls = tls
        self._idle: dict[Origin, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        connection = self._connection(request, timeouts.get("connect"))
        body = request.read()
        try:
            assert connection.sock is not None
            connection.sock.settimeout(timeouts.get("read"))
            connection.putrequest(
                request.method,
                request.url.raw_path.decode("ascii"),
                skip_host=True,
                skip_accept_encoding=True,
            )
            for name, value in request.headers.raw:
                connection.putheader(name.decode("latin-1"), value.decode("latin-1"))
            try:
                connection.endheaders(body)
                hung_up = False
            except (BrokenPipeError, ConnectionResetError):
                # A server may answer before reading the whole body (413: too large) and
                # hang up; its reply is still readable and says what went wrong.
                hung_up = True
            response = connection.getresponse()
            response.will_close = response.will_close or hung_up
        except NETWORK_ERRORS as exc:
            connection.close()
            raise _mapped(exc, request, httpx.ReadTimeout, httpx.ReadError) from exc
        except BaseException:
            connection.close()
            raise
        return httpx.Response(
            response.status,
            headers=response.getheaders(),
            stream=_Body(self, _origin(request.url), connection, response, request),
            extensions={"http_version": b"HTTP/1.1"},
        )

    def _connection(
        self, request: httpx.Request, timeout: float | None
    ) -> http.client.HTTPConnection:
        origin = _origin(request.url)
        with self._lock:
            idle = self._idle.get(origin, [])
            while idle:
                kept = idle.pop()
                if _usable(kept):
                    return kept
                kept.close()
        scheme, host, port = origin
        if scheme == "https":
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=timeout, context=self._tls()
            )
        else:
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            connection.connect()
            assert connection.sock is not None
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except NETWORK_ERRORS as exc:
            connection.close()
            raise _mapped(exc, request, httpx.ConnectTimeout, httpx.ConnectError) from exc
        return connection

    def keep(self, origin: Origin, connection: http.client.HTTPConnection) -> None:
        """Put a connection whose response was read to the end back for reuse."""
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if len(idle) < MAX_IDLE:
                idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()


class _Body(httpx.SyncByteStream):
    """A response body read from its connection as the caller asks (streams too)."""

    def __init__(
        self,
        transport: Transport,
        origin: Origin,
        connection: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        request: httpx.Request,
    ) -> None:
        self._transport = transport
        self._origin = origin
        self._connection = connection
        self._response = response
        self._request = request
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            while chunk := self._response.read1(CHUNK):
                yield chunk
            self._response.read()  # marks a Content-Length body as read to the end
        except NETWORK_ERRORS as exc:
            self._connection.close()
            raise _mapped(exc, self._request, httpx.ReadTimeout, httpx.ReadError) from exc

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._response.isclosed() and not self._response.will_close:
            self._transport.keep(self._origin, self._connection)
        else:  # not read to the end (a stopped stream), or the server ends the connection
            self._connection.close()


def _origin(url: httpx.URL) -> Origin:
    port = url.port or (443 if url.scheme == "https" else 80)
    return url.scheme, url.host, port


def _usable(connection: http.client.HTTPConnection) -> bool:
    """An idle connection is usable unless it became readable: closed, or stray bytes."""
    if connection.sock is None:
        return False
    readable, _, _ = select.select([connection.sock], [], [], 0)
    return not readable


def _mapped(
    exc: OSError | http.client.HTTPException,
    request: httpx.Request,
    timeout: type[httpx.TransportError],
    failure: type[httpx.TransportError],
) -> httpx.TransportError:
    """The httpx exception for a socket or protocol error, as httpx's transport raises."""
    if isinstance(exc, TimeoutError):
        return timeout(str(exc) or "timed out", request=request)
    return failure(f"{type(exc).__name__}: {exc}", request=request)
