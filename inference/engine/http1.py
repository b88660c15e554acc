"""A lean pooled HTTP/1.1 client for the upstream backends: asyncio protocols and httptools' parser
(llhttp, the parser uvicorn already uses for the portal's own requests).

Why not httpx: on a gateway whose upstream answers in a millisecond, httpx/httpcore were about half
of the portal's CPU per request (its pool polls every idle connection on each request to find the
ones the server closed, and each request passes auth, redirect and cookie layers a gateway never
uses). Here a connection learns that its server closed it from asyncio (``connection_lost``), so
taking one from the pool costs nothing. What the upstream calls need, and no more: keep-alive
connections per origin (most recently used first, idle expiry), a cap on parallel requests with a
pool timeout, Content-Length, chunked and close-delimited bodies, TLS, per-read timeouts, streamed
bodies with back-pressure. No redirects, cookies, proxies or HTTP/2.

Errors carry fixed messages: never the URL (it can hold credentials) nor a peer's text.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import httptools


class HttpError(Exception):
    """No usable response: the connection failed, broke or carried something that isn't HTTP."""


class ConnectFailed(HttpError):
    pass


class HttpTimeout(HttpError):
    pass


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    read: float = 120.0  # each wait for bytes from the server, the first one included
    write: float = 30.0
    pool: float = 10.0  # waiting for a free place under max_connections

    @classmethod
    def each(cls, seconds: float) -> Timeouts:
        """A deployment's timeout: each read (the first byte included) may take `seconds`."""
        return cls(connect=min(5.0, seconds), read=seconds, write=min(30.0, seconds), pool=seconds)


_PAUSE_ABOVE = 256 * 1024  # unread body bytes before the socket stops being read (until they are taken)


def _expire(waiter: asyncio.Future, what: str) -> None:
    if not waiter.done():
        waiter.set_exception(HttpTimeout(f"upstream {what} timed out"))


class _Connection(asyncio.Protocol):
    """One keep-alive connection; parses one response at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._write_paused = False
        self._waiter: asyncio.Future | None = None
        self._begin()

    def _begin(self) -> None:
        self.status = 0
        self._framed = False  # a Content-Length or Transfer-Encoding header came
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.error: HttpError | None = None
        self.chunks: deque[bytes] = deque()
        self._buffered = 0
        self._reading_paused = False
        self._close_delimited = False

    # ---- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail(HttpError("upstream sent a malformed HTTP response"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete:
            if self.headers_done and self._close_delimited and exc is None:
                self.complete = True  # a body that ends with the connection (no length, not chunked)
            elif self.error is None:
                self.error = HttpError("upstream closed the connection before the response ended")
        self._wake()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake()

    # ---- httptools callbacks ----------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self._framed = True

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self.keep_alive = self._parser.should_keep_alive()
        self._close_delimited = not self._framed and self.status not in (204, 304) and not 100 <= self.status < 200
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _PAUSE_ABOVE and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wake()

    # ---- used by the pool and the response --------------------------------------------------
    def _fail(self, error: HttpError) -> None:
        self.error = error
        self.close()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, timeout: float, what: str) -> None:
        """Until the parser or the socket has news (or `timeout` seconds: HttpTimeout)."""
        waiter = self._waiter = self.loop.create_future()
        timer = self.loop.call_later(timeout, _expire, waiter, what)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    async def send(self, data: bytes, timeouts: Timeouts) -> None:
        self._begin()
        assert self.transport is not None
        self.transport.write(data)
        while self._write_paused and not self.closed:
            await self.wait(timeouts.write, "write")

    def take_chunks(self) -> list[bytes]:
        chunks = list(self.chunks)
        self.chunks.clear()
        self._buffered = 0
        if self._reading_paused and self.transport is not None and not self.closed:
            self._reading_paused = False
            self.transport.resume_reading()
        return chunks

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed and self.error is None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Response:
    """A response whose head has arrived; read the body with `read()` or `iter_bytes()`, then
    `close()` (or use it as an async context manager). An unfinished body closes the connection."""

    def __init__(self, pool: Http1Pool, conn: _Connection):
        self._pool = pool
        self._conn: _Connection | None = conn
        self.status = conn.status

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None:
            return
        while True:
            for chunk in conn.take_chunks():
                yield chunk
            if conn.error is not None:
                raise conn.error
            if conn.complete:
                break
            await conn.wait(self._pool.timeouts.read, "read")
        self.close()

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.iter_bytes()])

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool._release(conn)

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


class Http1Pool:
    """Keep-alive connections to one origin, for one event loop (a connection belongs to its loop).

    `base_url` may carry a path prefix (`http://host:8000/v1`) and credentials (`user:pass@`,
    sent as Basic auth unless `headers` has an Authorization)."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str] | None = None,
        timeouts: Timeouts | None = None,
        max_connections: int = 256,
        keepalive_expiry: float = 4.0,
    ):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the upstream URL must be http:// or https:// with a host")
        self.timeouts = timeouts or Timeouts()
        self.keepalive_expiry = keepalive_expiry
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl: ssl.SSLContext | None = ssl.create_default_context() if parts.scheme == "https" else None
        self._path_prefix = parts.path.rstrip("/")
        default_port = self._port == (443 if parts.scheme == "https" else 80)
        host = f"[{self._host}]" if ":" in self._host else self._host
        fixed = {"Host": host if default_port else f"{host}:{self._port}", "Accept": "*/*"}
        if parts.username is not None:
            credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            fixed["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
        fixed.update(headers or {})
        self._head_lines = "".join(f"{name}: {value}\r\n" for name, value in fixed.items())
        self._idle: list[_Connection] = []  # most recently used last
        self._slots = asyncio.Semaphore(max_connections)
        self._open: set[_Connection] = set()
        self.connections_made = 0

    async def post(self, path: str, body: bytes, content_type: str = "application/json") -> Response:
        """Send one POST and wait for the response's head. The caller closes the response."""
        head = (
            f"POST {self._path_prefix}{path} HTTP/1.1\r\n{self._head_lines}"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        await self._acquire_slot()
        conn: _Connection | None = None
        try:
            conn = await self._connection()
            await conn.send(head.encode("latin-1") + body, self.timeouts)
            while not conn.headers_done and conn.error is None:
                await conn.wait(self.timeouts.read, "read")
            if conn.error is not None:
                raise conn.error
            return Response(self, conn)
        except BaseException:
            if conn is not None:
                conn.close()
                self._open.discard(conn)
            self._slots.release()
            raise

    async def _acquire_slot(self) -> None:
        if not self._slots.locked():
            await self._slots.acquire()  # returns at once
            return
        try:
            await asyncio.wait_for(self._slots.acquire(), self.timeouts.pool)
        except TimeoutError as exc:
            raise HttpTimeout("no free upstream connection in time") from exc

    async def _connection(self) -> _Connection:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and now - conn.idle_since < self.keepalive_expiry:
                return conn
            conn.close()
            self._open.discard(conn)
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(loop),
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl else None,
                ),
                self.timeouts.connect,
            )
        except TimeoutError as exc:
            raise HttpTimeout("upstream connect timed out") from exc
        except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
            raise ConnectFailed(f"upstream unreachable ({type(exc).__name__})") from exc
        self.connections_made += 1
        self._open.add(protocol)
        return protocol

    def _release(self, conn: _Connection) -> None:
        if conn.reusable():
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()
            self._open.discard(conn)
        self._slots.release()

    def close(self) -> None:
        for conn in self._open:
            conn.close()
        self._open.clear()
        self._idle.clear()
