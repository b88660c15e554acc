"""A scripted HTTP/1.1 server on a real local port, in the test's own event loop.

Each request is parsed (request line, headers, Content-Length body) and recorded; `respond` gets the
request and returns the raw response bytes (see `reply`), or None to close the connection without
an answer. It may be async (to hold an answer back). Connections are kept alive unless the response
says `connection: close` or was wrapped in `and_close`."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


Responder = Callable[[Request], "bytes | None | Awaitable[bytes | None]"]


def reply(
    status: int = 200,
    body: bytes | str | dict = b"",
    *,
    content_type: str = "application/json",
    chunked: bool = False,
    close: bool = False,
    length: bool = True,
) -> bytes:
    """Raw response bytes: Content-Length (default), chunked, or neither (`length=False`:
    the body ends when the connection closes)."""
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    head = [f"HTTP/1.1 {status} X", f"content-type: {content_type}"]
    if close or not length:
        head.append("connection: close")
    if chunked:
        head.append("transfer-encoding: chunked")
        pieces = [body[i : i + 7] for i in range(0, len(body), 7)]
        payload = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces) + b"0\r\n\r\n"
    else:
        if length:
            head.append(f"content-length: {len(body)}")
        payload = body
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


class _Closing(bytes):
    pass


def and_close(raw: bytes) -> bytes:
    """Send `raw` as it is (malformed or cut short), then close the connection."""
    return _Closing(raw)


@dataclass
class ScriptedServer:
    respond: Responder
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    _server: asyncio.Server | None = None

    def url(self, prefix: str = "/v1", userinfo: str = "") -> str:
        return f"http://{userinfo}127.0.0.1:{self.port}{prefix}"

    async def __aenter__(self) -> ScriptedServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line, *lines = head.decode("latin-1").split("\r\n")
                method, path, _ = line.split(" ", 2)
                headers = {n.strip().lower(): v.strip() for n, _, v in (h.partition(":") for h in lines if h)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Request(method, path, headers, body)
                self.requests.append(request)
                answer = self.respond(request)
                if inspect.isawaitable(answer):
                    answer = await answer
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if isinstance(answer, _Closing) or b"connection: close" in answer.split(b"\r\n\r\n", 1)[0].lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
