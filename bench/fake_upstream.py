"""An OpenAI-compatible server that answers instantly: for measuring gateway overhead.

    .venv/bin/python -m bench.fake_upstream --port 9100      # raw asyncio + httptools (bench/gateway.py)
    .venv/bin/python -m uvicorn bench.fake_upstream:app --port 9100 --no-access-log   # the same as ASGI

Every request gets the same answer (a stream when the body asks for one). The raw server costs
a fraction of uvicorn's CPU per request: on a small machine, what the stand-in upstream doesn't
use is left to the servers being measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json

import httptools
import uvloop

COMPLETION = json.dumps(
    {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": "fake",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
).encode()
CHUNKS = [
    {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "fake",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": "ok"}, "finish_reason": None}],
    },
    {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "fake",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    },
    {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "fake",
        "choices": [],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    },
]
STREAM = b"".join(f"data: {json.dumps(chunk)}\n\n".encode() for chunk in CHUNKS) + b"data: [DONE]\n\n"


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    streaming = b'"stream": true' in body or b'"stream":true' in body
    payload, content_type = (STREAM, b"text/event-stream") if streaming else (COMPLETION, b"application/json")
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": payload})


class _Answer(asyncio.Protocol):
    """One connection: parse each request, answer it at once, keep the connection alive."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.parser = httptools.HttpRequestParser(self)
        self.body: list[bytes] = []

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_begin(self) -> None:
        self.body = []

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        body = b"".join(self.body)
        streaming = b'"stream": true' in body or b'"stream":true' in body
        payload, content_type = (STREAM, b"text/event-stream") if streaming else (COMPLETION, b"application/json")
        head = b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n" % (content_type, len(payload))
        self.transport.write(head + payload)
        if not self.parser.should_keep_alive():
            self.transport.close()


async def serve(host: str, port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Answer, host, port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    options = parser.parse_args()
    uvloop.run(serve(options.host, options.port))
