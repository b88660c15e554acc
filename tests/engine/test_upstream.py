"""The upstream (OpenAI-compatible server) backends and their HTTP/1.1 client, against scripted
servers on real local ports; no external network."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import replace

import pytest

from inference.engine.http1 import ConnectFailed, Http1Pool, HttpError, HttpTimeout, Timeouts
from inference.engine.types import GenerationRequest, ModelSpec, SamplingParams, UpstreamError
from inference.engine.upstream import UpstreamEmbedder, UpstreamTextGenerator

from .conftest import chat
from .scripted_server import Request, ScriptedServer, and_close, reply

pytestmark = pytest.mark.asyncio


def spec(server: ScriptedServer, **fields) -> ModelSpec:
    base = {"name": "big", "kind": "chat", "backend": "upstream", "upstream_url": server.url()}
    return ModelSpec(**{**base, **fields})


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


def event_stream(body: bytes, **options) -> bytes:
    return reply(200, body, content_type="text/event-stream", **options)


OK = {"choices": [{"index": 0, "message": {"content": "ok"}, "finish_reason": "stop"}]}
WHOLE = GenerationRequest(params=SamplingParams(), messages=({"role": "user", "content": "hi"},), stream=False)


@pytest.mark.parametrize("framing", [{}, {"chunked": True}, {"length": False}])
async def test_chat_streams_deltas_and_usage(framing):
    """Content-Length, chunked and close-delimited bodies; SSE events split across reads."""
    async with ScriptedServer(lambda r: event_stream(chat_chunks("Hel", "lo", " 世界"), **framing)) as server:
        gen = UpstreamTextGenerator(spec(server, upstream_api_key="sk-up", upstream_model="llama-70b"))
        deltas = [d async for d in gen.stream(chat("hi", max_tokens=9, stop=("END",), seed=3))]
        await gen.aclose()
    assert "".join(d.text for d in deltas) == "Hello 世界"
    final = deltas[-1]
    assert final.finish_reason == "stop"
    assert (final.prompt_tokens, final.completion_tokens) == (11, 3)
    req = server.requests[-1]
    assert (req.method, req.path) == ("POST", "/v1/chat/completions")
    assert req.headers["authorization"] == "Bearer sk-up"
    assert req.headers["host"] == f"127.0.0.1:{server.port}"
    assert req.headers["content-type"] == "application/json"
    body = req.json
    assert body["model"] == "llama-70b" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 9 and body["stop"] == ["END"] and body["seed"] == 3
    assert body["messages"] == [{"role": "user", "content": "hi"}]


async def test_completion_prompt_uses_completions_endpoint_and_length_finish():
    chunk = {"object": "text_completion", "choices": [{"index": 0, "text": "Paris", "finish_reason": "length"}]}
    async with ScriptedServer(lambda r: event_stream(sse(chunk, "[DONE]"))) as server:
        gen = UpstreamTextGenerator(spec(server))
        request = GenerationRequest(params=SamplingParams(max_tokens=1), prompt="Capital of France:")
        text, final = await gen.generate(request)
    assert text == "Paris" and final.finish_reason == "length" and final.completion_tokens == 1
    assert server.requests[-1].path == "/v1/completions" and server.requests[-1].json["prompt"] == "Capital of France:"


@pytest.mark.parametrize("status", [400, 401, 429, 500, 503])
async def test_non_2xx_maps_to_upstream_error_with_status(status):
    body = {"error": {"message": "nope", "type": "x"}}
    async with ScriptedServer(lambda r: reply(status, body)) as server:
        for request in (chat("hi"), WHOLE):
            gen = UpstreamTextGenerator(spec(server))
            with pytest.raises(UpstreamError, match="nope") as info:
                await gen.generate(request)
            assert info.value.status == status


async def test_a_refused_port_is_502_and_a_silent_server_is_504():
    async with ScriptedServer(lambda r: reply(200, OK)) as server:
        url = server.url()
    gen = UpstreamTextGenerator(replace(spec(server), upstream_url=url))  # nothing listens there now
    with pytest.raises(UpstreamError) as info:
        await gen.generate(chat("hi"))
    assert info.value.status == 502

    async def never(request: Request) -> bytes:
        await asyncio.sleep(5)
        return reply(200, OK)

    async with ScriptedServer(never) as server:
        gen = UpstreamTextGenerator(spec(server), timeout=Timeouts.each(0.2))
        for request in (chat("hi"), WHOLE):
            with pytest.raises(UpstreamError) as info:
                await gen.generate(request)
            assert info.value.status == 504 and "timed out" in str(info.value)


@pytest.mark.parametrize(
    "answer",
    [
        None,  # the connection closes without a response
        and_close(b'HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n{"choices"'),  # closes mid-body
        and_close(b"SMTP ready\r\n\r\n"),  # not HTTP
    ],
)
async def test_a_broken_response_is_502(answer):
    async with ScriptedServer(lambda r: answer) as server:
        gen = UpstreamTextGenerator(spec(server))
        for request in (chat("hi"), WHOLE):
            with pytest.raises(UpstreamError) as info:
                await gen.generate(request)
            assert info.value.status == 502


async def test_embedder_forwards_and_orders_vectors():
    data = [
        {"object": "embedding", "index": 1, "embedding": [0.0, 1.0]},
        {"object": "embedding", "index": 0, "embedding": [1.0, 0.0]},
    ]
    async with ScriptedServer(lambda r: reply(200, {"data": data, "usage": {"prompt_tokens": 4}})) as server:
        emb = UpstreamEmbedder(spec(server, name="emb", kind="embedding"))
        result = await emb.embed(["a", "b"])
        assert result.vectors == [[1.0, 0.0], [0.0, 1.0]] and result.prompt_tokens == 4
        assert emb.dimensions == 2
        assert server.requests[-1].path == "/v1/embeddings"
        assert server.requests[-1].json == {"model": "emb", "input": ["a", "b"]}
        server.respond = lambda r: reply(500, "boom", content_type="text/plain")
        with pytest.raises(UpstreamError) as info:
            await emb.embed(["a"])
        assert info.value.status == 500


async def test_a_non_streaming_request_makes_one_plain_call_and_keeps_tool_calls_and_logprobs():
    tool_call = {"id": "call_9", "type": "function", "function": {"name": "lookup", "arguments": '{"q": 1}'}}
    logprobs = {"content": [{"token": "x", "logprob": -1.5, "bytes": [120], "top_logprobs": []}]}
    message = {"role": "assistant", "content": None, "tool_calls": [tool_call]}
    choice = {"index": 0, "message": message, "logprobs": logprobs, "finish_reason": "tool_calls"}
    answer = {"choices": [choice], "usage": {"prompt_tokens": 21, "completion_tokens": 4}}
    async with ScriptedServer(lambda r: reply(200, answer, chunked=True)) as server:
        gen = UpstreamTextGenerator(spec(server))
        extra = {"tools": [{"type": "function", "function": {"name": "lookup"}}], "tool_choice": "auto", "user": "u1"}
        request = replace(WHOLE, params=SamplingParams(max_tokens=9), extra=extra)
        deltas = [d async for d in gen.stream(request)]
    assert len(deltas) == 1
    only = deltas[0]
    assert only.finish_reason == "tool_calls" and only.tool_calls == [tool_call] and only.logprobs == logprobs
    assert (only.text, only.prompt_tokens, only.completion_tokens) == ("", 21, 4)
    body = server.requests[-1].json
    assert body["stream"] is False and "stream_options" not in body
    assert body["tools"] == extra["tools"] and body["tool_choice"] == "auto" and body["user"] == "u1"


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
    async with ScriptedServer(lambda r: event_stream(body, chunked=True)) as server:
        gen = UpstreamTextGenerator(spec(server))
        deltas = [d async for d in gen.stream(chat("hi"))]
    assert [d.tool_calls for d in deltas[:-1]] == [[head], [tail]]
    assert deltas[-1].finish_reason == "tool_calls"


async def test_requests_reuse_one_keep_alive_connection():
    """HTTP/1.1 keep-alive: many requests, streamed or not, one TCP connection."""

    def respond(request: Request) -> bytes:
        return event_stream(chat_chunks("a"), chunked=True) if request.json["stream"] else reply(200, OK)

    async with ScriptedServer(respond) as server:
        gen = UpstreamTextGenerator(spec(server))
        try:
            for request in (WHOLE, chat("hi")) * 5:
                text, final = await gen.generate(request)
                assert text in ("ok", "a") and final.finish_reason == "stop"
            assert server.connections == 1
        finally:
            await gen.aclose()


async def test_a_connection_the_server_closed_is_replaced_not_reused():
    async with ScriptedServer(lambda r: reply(200, OK, close=True)) as server:
        gen = UpstreamTextGenerator(spec(server))
        for _ in range(3):
            text, _ = await gen.generate(WHOLE)
            assert text == "ok"
        assert server.connections == 3


async def test_a_client_that_stops_reading_a_stream_closes_its_connection():
    """An abandoned stream's connection can't be reused (its response never ended)."""
    gate = asyncio.Event()

    async def respond(request: Request) -> bytes:
        if request.json["stream"]:
            await gate.wait()
        return event_stream(chat_chunks("a", "b")) if request.json["stream"] else reply(200, OK)

    async with ScriptedServer(respond) as server:
        gen = UpstreamTextGenerator(spec(server))
        task = asyncio.create_task(gen.generate(chat("hi")))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.set()
        text, _ = await gen.generate(WHOLE)
        assert text == "ok" and server.connections == 2
        await gen.aclose()


async def test_credentials_in_the_url_become_basic_auth_and_a_key_wins():
    async with ScriptedServer(lambda r: reply(200, OK)) as server:
        url = server.url(userinfo="admin:p%40ss@")
        await UpstreamTextGenerator(replace(spec(server), upstream_url=url)).generate(WHOLE)
        assert server.requests[-1].headers["authorization"] == "Basic " + base64.b64encode(b"admin:p@ss").decode()
        await UpstreamTextGenerator(replace(spec(server), upstream_url=url, upstream_api_key="sk-k")).generate(WHOLE)
        assert server.requests[-1].headers["authorization"] == "Bearer sk-k"


async def test_the_pool_caps_parallel_requests_and_times_out_waiting():
    release = asyncio.Event()

    async def respond(request: Request) -> bytes:
        await release.wait()
        return reply(200, OK)

    async with ScriptedServer(respond) as server:
        pool = Http1Pool(server.url(), timeouts=Timeouts(pool=0.2, read=5), max_connections=2)
        first = [asyncio.create_task(pool.post("/x", b"{}")) for _ in range(2)]
        await asyncio.sleep(0.05)
        with pytest.raises(HttpTimeout):
            await pool.post("/x", b"{}")
        waiting = asyncio.create_task(pool.post("/x", b"{}"))
        release.set()
        for response in await asyncio.gather(*first):
            assert json.loads(await response.read()) == OK
        third = await waiting  # got the place the first two freed
        assert third.status == 200 and json.loads(await third.read()) == OK
        assert server.connections == 2
        pool.close()


async def test_large_bodies_arrive_whole_with_back_pressure():
    big = {"data": "x" * 3_000_000}
    async with ScriptedServer(lambda r: reply(200, big, chunked=False)) as server:
        pool = Http1Pool(server.url())
        async with await pool.post("/big", json.dumps({"n": 1}).encode()) as response:
            assert json.loads(await response.read()) == big
        async with await pool.post("/big", b"{}") as response:  # the same connection, still usable
            assert len(await response.read()) == len(json.dumps(big))
        assert server.connections == 1
        pool.close()


async def test_client_errors_name_neither_host_nor_credentials():
    async with ScriptedServer(lambda r: None) as server:
        url = server.url(userinfo="admin:hunter2@")
        pool = Http1Pool(url)
        with pytest.raises(HttpError) as broken:
            await pool.post("/x", b"{}")
    with pytest.raises(ConnectFailed) as refused:
        await Http1Pool(url).post("/x", b"{}")
    for error in (broken.value, refused.value):
        assert "hunter2" not in str(error) and "127.0.0.1" not in str(error)
    with pytest.raises(ValueError):
        Http1Pool("ftp://host/v1")
