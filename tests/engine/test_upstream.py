"""The upstream (OpenAI-compatible server) backends against fake servers; no external network."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from inference.engine.types import GenerationRequest, ModelSpec, SamplingParams, UpstreamError
from inference.engine.upstream import UpstreamEmbedder, UpstreamTextGenerator

from .conftest import chat

SPEC = ModelSpec(
    name="big",
    kind="chat",
    backend="upstream",
    upstream_url="http://upstream.test/v1",
    upstream_api_key="sk-up",
    upstream_model="llama-70b",
)


def sse(*events: dict | str) -> bytes:
    return b"".join(f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n".encode() for e in events)


def chat_chunks(*pieces: str, finish: str = "stop") -> bytes:
    base = {"id": "c1", "object": "chat.completion.chunk", "model": "llama-70b"}
    events: list[dict | str] = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
    events += [{**base, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]} for p in pieces]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    events.append({**base, "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}})
    events.append("[DONE]")
    return sse(*events)


class Recorder:
    def __init__(self, respond):
        self.requests: list[httpx.Request] = []
        self.respond = respond

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.respond(request)

    @property
    def payload(self) -> dict:
        return json.loads(self.requests[-1].content)


@pytest.mark.asyncio
async def test_chat_streams_deltas_and_usage():
    rec = Recorder(
        lambda r: httpx.Response(
            200, content=chat_chunks("Hel", "lo", " 世界"), headers={"content-type": "text/event-stream"}
        )
    )
    gen = UpstreamTextGenerator(SPEC, transport=httpx.MockTransport(rec))
    deltas = [d async for d in gen.stream(chat("hi", max_tokens=9, stop=("END",), seed=3))]
    assert "".join(d.text for d in deltas) == "Hello 世界"
    final = deltas[-1]
    assert final.finish_reason == "stop"
    assert (final.prompt_tokens, final.completion_tokens) == (11, 3)
    req = rec.requests[-1]
    assert req.url.path == "/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer sk-up"
    body = rec.payload
    assert body["model"] == "llama-70b" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 9 and body["stop"] == ["END"] and body["seed"] == 3
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    await gen.aclose()


@pytest.mark.asyncio
async def test_completion_prompt_uses_completions_endpoint_and_length_finish():
    def respond(request):
        chunk = {"object": "text_completion", "choices": [{"index": 0, "text": "Paris", "finish_reason": "length"}]}
        return httpx.Response(200, content=sse(chunk, "[DONE]"))

    rec = Recorder(respond)
    gen = UpstreamTextGenerator(SPEC, transport=httpx.MockTransport(rec))
    request = GenerationRequest(params=SamplingParams(max_tokens=1), prompt="Capital of France:")
    text, final = await gen.generate(request)
    assert text == "Paris" and final.finish_reason == "length" and final.completion_tokens == 1
    assert rec.requests[-1].url.path == "/v1/completions" and rec.payload["prompt"] == "Capital of France:"


@pytest.mark.parametrize("status", [400, 401, 429, 500, 503])
@pytest.mark.asyncio
async def test_non_2xx_maps_to_upstream_error_with_status(status):
    body = {"error": {"message": "nope", "type": "x"}}
    gen = UpstreamTextGenerator(SPEC, transport=httpx.MockTransport(lambda r: httpx.Response(status, json=body)))
    with pytest.raises(UpstreamError, match="nope") as info:
        await gen.generate(chat("hi"))
    assert info.value.status == status


@pytest.mark.asyncio
async def test_connection_error_and_timeout_map_to_upstream_error():
    def refuse(request):
        raise httpx.ConnectError("refused", request=request)

    def slow(request):
        raise httpx.ReadTimeout("slow", request=request)

    for handler, status in ((refuse, 502), (slow, 504)):
        gen = UpstreamTextGenerator(SPEC, transport=httpx.MockTransport(handler))
        with pytest.raises(UpstreamError) as info:
            await gen.generate(chat("hi"))
        assert info.value.status == status


@pytest.mark.asyncio
async def test_real_socket_server_streaming_and_refused_port():
    """A tiny asyncio HTTP/1.1 server on 127.0.0.1 that answers one SSE stream."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        head = await reader.readuntil(b"\r\n\r\n")
        length = int([h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0].split(b":")[1])
        await reader.readexactly(length)
        body = chat_chunks("a", "b")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n")
        writer.write(f"content-length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        gen = UpstreamTextGenerator(
            ModelSpec(name="m", kind="chat", backend="upstream", upstream_url=f"http://127.0.0.1:{port}/v1")
        )
        text, final = await gen.generate(chat("hi"))
        assert text == "ab" and final.completion_tokens == 3
        await gen.aclose()
    finally:
        server.close()
        await server.wait_closed()
    gen = UpstreamTextGenerator(
        ModelSpec(name="m", kind="chat", backend="upstream", upstream_url=f"http://127.0.0.1:{port}/v1")
    )
    with pytest.raises(UpstreamError) as info:
        await gen.generate(chat("hi"))
    assert info.value.status == 502


@pytest.mark.asyncio
async def test_embedder_forwards_and_orders_vectors():
    def respond(request):
        data = [
            {"object": "embedding", "index": 1, "embedding": [0.0, 1.0]},
            {"object": "embedding", "index": 0, "embedding": [1.0, 0.0]},
        ]
        return httpx.Response(200, json={"data": data, "usage": {"prompt_tokens": 4, "total_tokens": 4}})

    rec = Recorder(respond)
    spec = ModelSpec(name="emb", kind="embedding", backend="upstream", upstream_url="http://upstream.test/v1")
    emb = UpstreamEmbedder(spec, transport=httpx.MockTransport(rec))
    result = await emb.embed(["a", "b"])
    assert result.vectors == [[1.0, 0.0], [0.0, 1.0]] and result.prompt_tokens == 4
    assert emb.dimensions == 2
    assert rec.requests[-1].url.path == "/v1/embeddings" and rec.payload == {"model": "emb", "input": ["a", "b"]}

    failing = UpstreamEmbedder(spec, transport=httpx.MockTransport(lambda r: httpx.Response(500, text="boom")))
    with pytest.raises(UpstreamError) as info:
        await failing.embed(["a"])
    assert info.value.status == 500


@pytest.mark.asyncio
async def test_a_non_streaming_request_makes_one_plain_call_and_keeps_tool_calls_and_logprobs():
    tool_call = {"id": "call_9", "type": "function", "function": {"name": "lookup", "arguments": '{"q": 1}'}}
    logprobs = {"content": [{"token": "x", "logprob": -1.5, "bytes": [120], "top_logprobs": []}]}

    def respond(request):
        message = {"role": "assistant", "content": None, "tool_calls": [tool_call]}
        choice = {"index": 0, "message": message, "logprobs": logprobs, "finish_reason": "tool_calls"}
        return httpx.Response(200, json={"choices": [choice], "usage": {"prompt_tokens": 21, "completion_tokens": 4}})

    rec = Recorder(respond)
    gen = UpstreamTextGenerator(SPEC, transport=httpx.MockTransport(rec))
    extra = {"tools": [{"type": "function", "function": {"name": "lookup"}}], "tool_choice": "auto", "user": "u1"}
    request = GenerationRequest(
        params=SamplingParams(max_tokens=9), messages=({"role": "user", "content": "hi"},), stream=False, extra=extra
    )
    deltas = [d async for d in gen.stream(request)]
    assert len(deltas) == 1
    only = deltas[0]
    assert only.finish_reason == "tool_calls" and only.tool_calls == [tool_call] and only.logprobs == logprobs
    assert (only.text, only.prompt_tokens, only.completion_tokens) == ("", 21, 4)
    body = rec.payload
    assert body["stream"] is False and "stream_options" not in body
    assert body["tools"] == extra["tools"] and body["tool_choice"] == "auto" and body["user"] == "u1"


@pytest.mark.asyncio
async def test_streamed_tool_call_deltas_and_finish_reason_pass_through_unchanged():
    base = {"id": "c1", "object": "chat.completion.chunk"}
    head = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
    tail = {"index": 0, "function": {"arguments": '{"a": 1}'}}
    body = sse(
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": None}}]},
        {**base, "choices": [{"index": 0, "delta": {"tool_calls": [head]}}]},
        {**base, "choices": [{"index": 0, "delta": {"tool_calls": [tail]}}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        "[DONE]",
    )
    gen = UpstreamTextGenerator(SPEC, transport=httpx.MockTransport(lambda r: httpx.Response(200, content=body)))
    deltas = [d async for d in gen.stream(chat("hi"))]
    assert [d.tool_calls for d in deltas[:-1]] == [[head], [tail]]
    assert deltas[-1].finish_reason == "tool_calls"


@pytest.mark.asyncio
async def test_requests_reuse_one_keep_alive_connection():
    """HTTP/1.1 keep-alive: many requests, one TCP connection (no handshake per request)."""
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        nonlocal connections
        connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(
                    [h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0].split(b":")[1]
                )
                await reader.readexactly(length)
                reply = json.dumps(
                    {"choices": [{"index": 0, "message": {"content": "ok"}, "finish_reason": "stop"}]}
                ).encode()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n")
                writer.write(f"content-length: {len(reply)}\r\n\r\n".encode() + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    spec = ModelSpec(name="m", kind="chat", backend="upstream", upstream_url=f"http://127.0.0.1:{port}/v1")
    gen = UpstreamTextGenerator(spec)
    try:
        request = GenerationRequest(
            params=SamplingParams(), messages=({"role": "user", "content": "hi"},), stream=False
        )
        for _ in range(10):
            text, final = await gen.generate(request)
            assert text == "ok" and final.finish_reason == "stop"
        assert connections == 1
    finally:
        await gen.aclose()
        server.close()
        await server.wait_closed()
