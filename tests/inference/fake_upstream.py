"""A fake OpenAI-compatible upstream on a real local port: chat with tools and JSON mode, streamed
or not, logprobs on request. Each server records what it was sent and can be stopped and started
again on the same port (a deployment that dies and recovers)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field

import uvicorn

TOOL_ARGUMENTS = '{"city": "Paris"}'
JSON_ANSWER = '{"answer": "Paris"}'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class FakeUpstream:
    """One fake server. `delay` holds every answer back (seconds); `first_token_delay` a stream's
    first chunk, `chunk_delay` each of the others."""

    name: str
    port: int = field(default_factory=free_port)
    delay: float = 0.0
    first_token_delay: float = 0.0
    chunk_delay: float = 0.0
    status: int = 200  # anything else: an OpenAI-shaped error with this status
    bodies: list[dict] = field(default_factory=list)
    auth_headers: list[str] = field(default_factory=list)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> int:
        return len(self.bodies)

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FakeUpstream:
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off", interface="asgi3"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"fake-upstream-{self.name}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"fake upstream {self.name} did not start on port {self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Die: stop accepting connections and close the open ones."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._server.force_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    # --- the OpenAI API ------------------------------------------------------------------------
    async def app(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        body = json.loads(raw or b"{}")
        self.bodies.append(body)
        headers = dict(scope["headers"])
        self.auth_headers.append(headers.get(b"authorization", b"").decode())
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status != 200:
            error = json.dumps({"error": {"message": "the GPU caught fire", "type": "server_error"}}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": error})
            return
        if scope["path"].endswith("/embeddings"):
            vectors = [
                {"object": "embedding", "index": i, "embedding": [1.0, 0.0, 0.0]} for i in range(len(body["input"]))
            ]
            payload = json.dumps({"object": "list", "data": vectors, "usage": {"prompt_tokens": 3, "total_tokens": 3}})
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": payload.encode()})
            return
        if body.get("stream"):
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
            )
            for index, chunk in enumerate(self.chunks(body)):
                if index == 0 and self.first_token_delay:
                    await asyncio.sleep(self.first_token_delay)
                elif index and self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay)
                data = f"data: {json.dumps(chunk)}\n\n".encode()
                await send({"type": "http.response.body", "body": data, "more_body": True})
            await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})
            return
        payload = json.dumps(self.completion(body)).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})

    def answer(self, body: dict) -> tuple[str, list[dict] | None, str]:
        """(content, tool_calls, finish_reason) for a request."""
        tools = body.get("tools") or []
        if tools and body.get("tool_choice") != "none":
            name = tools[0]["function"]["name"]
            call = {"id": "call_1", "type": "function", "function": {"name": name, "arguments": TOOL_ARGUMENTS}}
            return "", [call], "tool_calls"
        if (body.get("response_format") or {}).get("type") in ("json_object", "json_schema"):
            return JSON_ANSWER, None, "stop"
        return f"Hello from {self.name}", None, "stop"

    @staticmethod
    def logprobs(text: str) -> dict:
        return {"content": [{"token": text, "logprob": -0.25, "bytes": list(text.encode()), "top_logprobs": []}]}

    def completion(self, body: dict) -> dict:
        content, tool_calls, finish = self.answer(body)
        message: dict = {"role": "assistant", "content": content or None}
        if tool_calls:
            message["tool_calls"] = tool_calls
        return {
            "id": "chatcmpl-up",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model"),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": self.logprobs(content) if body.get("logprobs") else None,
                    "finish_reason": finish,
                }
            ],
            "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12},
        }

    def chunks(self, body: dict) -> list[dict]:
        content, tool_calls, finish = self.answer(body)
        base = {"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 0, "model": body.get("model")}

        def chunk(delta: dict, finish_reason: str | None = None, logprobs: dict | None = None) -> dict:
            choice = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}
            return {**base, "choices": [choice]}

        chunks = [chunk({"role": "assistant", "content": ""})]
        if tool_calls:
            call = tool_calls[0]
            head = {"index": 0, "id": call["id"], "type": "function", "function": {"name": call["function"]["name"]}}
            chunks.append(chunk({"tool_calls": [{**head, "function": {**head["function"], "arguments": ""}}]}))
            arguments = call["function"]["arguments"]
            for piece in (arguments[:8], arguments[8:]):
                chunks.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        else:
            for piece in (content[:6], content[6:]):
                chunks.append(
                    chunk({"content": piece}, logprobs=self.logprobs(piece) if body.get("logprobs") else None)
                )
        chunks.append(chunk({}, finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append({**base, "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 5}})
        return chunks
