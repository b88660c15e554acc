"""Backends that forward to an external OpenAI-compatible server (vLLM, TGI, Ollama, llama.cpp).

Errors never name the upstream URL or echo httpx's exception text: the URL can hold credentials
(`https://user:token@host/v1`) and the messages reach clients and logs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx

from .base import Embedder, TextGenerator
from .types import (
    EmbeddingResult,
    EmbedProgress,
    FinishReason,
    GenerationRequest,
    InvalidRequest,
    ModelSpec,
    TextDelta,
    UpstreamError,
)

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=120.0, write=30.0, pool=10.0)


class _UpstreamClient:
    """One httpx.AsyncClient per event loop (a pooled connection belongs to its loop)."""

    def __init__(self, spec: ModelSpec, transport: httpx.AsyncBaseTransport | None, timeout: Any):
        if not spec.upstream_url:
            raise InvalidRequest(f"model {spec.name!r}: upstream_url is required")
        self.spec = spec
        self.base_url = spec.upstream_url.rstrip("/")
        self.model = spec.upstream_model or spec.name
        self._transport = transport
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop or self._client.is_closed:
            headers = {"Authorization": f"Bearer {self.spec.upstream_api_key}"} if self.spec.upstream_api_key else {}
            self._client = httpx.AsyncClient(
                base_url=self.base_url, headers=headers, timeout=self._timeout, transport=self._transport
            )
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.aclose()

    async def post_json(self, path: str, payload: dict) -> dict:
        try:
            response = await self.client().post(path, json=payload)
        except httpx.TimeoutException as exc:
            raise UpstreamError(f"upstream timed out ({type(exc).__name__})", status=504) from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(f"upstream unreachable ({type(exc).__name__})", status=502) from exc
        if response.status_code >= 400:
            raise _status_error(response.status_code, response.text)
        try:
            return response.json()
        except ValueError as exc:
            raise UpstreamError("upstream sent invalid JSON", status=502) from exc

    async def stream_events(self, path: str, payload: dict) -> AsyncIterator[dict]:
        """POST with stream=true and yield each SSE `data:` JSON object until [DONE]."""
        try:
            async with self.client().stream("POST", path, json=payload) as response:
                if response.status_code >= 400:
                    body = (await response.aread()).decode("utf-8", "replace")
                    raise _status_error(response.status_code, body)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue  # comments, event names, blank separators
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    try:
                        event = json.loads(data)
                    except ValueError as exc:
                        raise UpstreamError(f"upstream sent invalid SSE data: {data[:200]!r}") from exc
                    if isinstance(event, dict) and "error" in event:
                        raise UpstreamError(f"upstream error: {_error_message(event)}")
                    yield event
        except httpx.TimeoutException as exc:
            raise UpstreamError(f"upstream timed out ({type(exc).__name__})", status=504) from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(f"upstream failed ({type(exc).__name__})", status=502) from exc


def _error_message(body: Any) -> str:
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return str(err.get("message") or err)
        if err:
            return str(err)
    return str(body)[:500]


def _status_error(status: int, text: str) -> UpstreamError:
    try:
        message = _error_message(json.loads(text))
    except ValueError:
        message = text[:500]
    return UpstreamError(f"upstream answered {status}: {message}", status=status)


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


class _UpstreamBackend:
    """What both upstream backends share: the spec and one pooled client to the server."""

    def __init__(
        self,
        spec: ModelSpec,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: Any = DEFAULT_TIMEOUT,
    ):
        self.name = spec.name
        self.spec = spec
        self.context_length = spec.context_length
        self._http = _UpstreamClient(spec, transport, timeout)

    async def aclose(self) -> None:
        await self._http.aclose()


class UpstreamTextGenerator(_UpstreamBackend, TextGenerator):
    """Streams chat (/chat/completions) or raw prompts (/completions) from an upstream server."""

    def __init__(self, spec: ModelSpec, **client_options: Any):
        super().__init__(spec, **client_options)
        self._running = 0

    def count_prompt_tokens(self, request: GenerationRequest) -> int:
        """An estimate (~4 characters a token); the upstream reports exact usage at the end."""
        if request.messages is not None:
            return sum(_estimate_tokens(str(m.get("content") or "")) + 4 for m in request.messages)
        return _estimate_tokens(request.prompt or "")

    def _payload(self, request: GenerationRequest) -> tuple[str, dict]:
        p = request.params
        payload: dict[str, Any] = {
            "model": self._http.model,
            "max_tokens": p.max_tokens,
            "temperature": p.temperature,
            "top_p": p.top_p,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if p.seed is not None:
            payload["seed"] = p.seed
        if p.stop:
            payload["stop"] = list(p.stop)
        if p.presence_penalty:
            payload["presence_penalty"] = p.presence_penalty
        if p.frequency_penalty:
            payload["frequency_penalty"] = p.frequency_penalty
        if request.messages is not None:
            return "/chat/completions", {**payload, "messages": list(request.messages)}
        if request.prompt is None:
            raise InvalidRequest("either messages or prompt is required")
        return "/completions", {**payload, "prompt": request.prompt}

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[TextDelta, None]:
        path, payload = self._payload(request)
        prompt_tokens = self.count_prompt_tokens(request)
        completion = 0
        finish: str | None = None
        usage: dict | None = None
        self._running += 1
        try:
            async for event in self._http.stream_events(path, payload):
                if event.get("usage"):
                    usage = event["usage"]
                for choice in event.get("choices") or []:
                    text = _choice_text(choice)
                    finish = choice.get("finish_reason") or finish
                    if text:
                        completion += 1
                        yield TextDelta(text=text, prompt_tokens=prompt_tokens, completion_tokens=completion)
        finally:
            self._running -= 1
        if usage:
            prompt_tokens = int(usage.get("prompt_tokens", prompt_tokens))
            completion = int(usage.get("completion_tokens", completion))
        reason: FinishReason = "length" if finish == "length" else "stop"  # content_filter, tool_calls -> stop
        yield TextDelta(text="", prompt_tokens=prompt_tokens, completion_tokens=completion, finish_reason=reason)

    def stats(self) -> dict:
        return {"queue_depth": 0, "running": self._running}


def _choice_text(choice: dict) -> str:
    delta = choice.get("delta")
    if isinstance(delta, dict):
        return delta.get("content") or ""
    return choice.get("text") or ""


class UpstreamEmbedder(_UpstreamBackend, Embedder):
    def __init__(self, spec: ModelSpec, **client_options: Any):
        super().__init__(spec, **client_options)
        self.dimensions = int(spec.options.get("dimensions", 0))

    async def embed(self, texts: list[str], progress: EmbedProgress | None = None) -> EmbeddingResult:
        if not texts:
            raise InvalidRequest("input must not be empty")
        try:
            body = await self._http.post_json("/embeddings", {"model": self._http.model, "input": list(texts)})
        except asyncio.CancelledError:
            if progress is not None:  # the upstream has the input: bill our estimate of it
                progress.prompt_tokens = sum(_estimate_tokens(t) for t in texts)
                progress.cancelled.set()
            raise
        try:
            items = sorted(body["data"], key=lambda d: d.get("index", 0))
            vectors = [list(map(float, item["embedding"])) for item in items]
        except (KeyError, TypeError, ValueError) as exc:
            raise UpstreamError("upstream embeddings response is malformed") from exc
        if len(vectors) != len(texts):
            raise UpstreamError(f"upstream returned {len(vectors)} vectors for {len(texts)} inputs")
        if vectors and not self.dimensions:
            self.dimensions = len(vectors[0])
        usage = body.get("usage") or {}
        tokens = int(usage.get("prompt_tokens", sum(_estimate_tokens(t) for t in texts)))
        return EmbeddingResult(vectors=vectors, prompt_tokens=tokens)
