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
    DeploymentSpec,
    EmbeddingResult,
    EmbedProgress,
    GenerationRequest,
    InvalidRequest,
    ModelSpec,
    TextDelta,
    UpstreamError,
)

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=120.0, write=30.0, pool=10.0)
KEEPALIVE_EXPIRY_S = 30.0


def timeout_for(seconds: float) -> httpx.Timeout:
    """A deployment's timeout: each read (the first byte included) may take `seconds`."""
    return httpx.Timeout(connect=min(5.0, seconds), read=seconds, write=min(30.0, seconds), pool=seconds)


class _UpstreamClient:
    """One pooled HTTP/1.1 keep-alive httpx.AsyncClient per deployment and event loop (a pooled
    connection belongs to its loop): requests reuse open connections instead of a TCP (and TLS)
    handshake each."""

    def __init__(
        self,
        *,
        url: str,
        api_key: str,
        model: str,
        transport: httpx.AsyncBaseTransport | None,
        timeout: Any,
        max_connections: int = 0,
    ):
        if not url:
            raise InvalidRequest("an upstream deployment needs its base URL")
        self.base_url = url.rstrip("/")
        self.model = model
        self._api_key = api_key
        self._transport = transport
        self._timeout = timeout
        self._limits = httpx.Limits(
            max_connections=max_connections or 256,
            max_keepalive_connections=max_connections or 64,
            keepalive_expiry=KEEPALIVE_EXPIRY_S,
        )
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop or self._client.is_closed:
            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                headers=headers,
                timeout=self._timeout,
                transport=self._transport,
                limits=self._limits,
                http1=True,
                http2=False,
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
            body = response.json()
        except ValueError as exc:
            raise UpstreamError("upstream sent invalid JSON", status=502) from exc
        if not isinstance(body, dict):
            raise UpstreamError("upstream sent a JSON value that is not an object", status=502)
        return body

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
    """What both upstream backends share: the spec and one pooled client to one deployment (the
    implicit one of an upstream model's own fields when no deployment is given)."""

    def __init__(
        self,
        spec: ModelSpec,
        *,
        deployment: DeploymentSpec | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: Any = None,
    ):
        self.name = spec.name
        self.spec = spec
        self.context_length = spec.context_length
        if deployment is None:
            deployment = implicit_deployment(spec)
        self.deployment = deployment
        self._http = _UpstreamClient(
            url=deployment.upstream_url,
            api_key=deployment.upstream_api_key,
            model=deployment.upstream_model or spec.name,
            transport=transport,
            timeout=timeout if timeout is not None else timeout_for(deployment.timeout_s),
            max_connections=deployment.max_parallel_requests,
        )

    async def aclose(self) -> None:
        await self._http.aclose()


def implicit_deployment(spec: ModelSpec) -> DeploymentSpec:
    """An upstream model without deployment rows: one deployment made of its own fields."""
    if not spec.upstream_url:
        raise InvalidRequest(f"model {spec.name!r}: upstream_url is required")
    return DeploymentSpec(
        id=f"model:{spec.name}",
        name="default",
        kind="upstream",
        upstream_url=spec.upstream_url,
        upstream_api_key=spec.upstream_api_key,
        upstream_model=spec.upstream_model or spec.name,
        timeout_s=DEFAULT_TIMEOUT.read or 120.0,
    )


class UpstreamTextGenerator(_UpstreamBackend, TextGenerator):
    """Chat (/chat/completions) or raw prompts (/completions) on an upstream server: streamed when
    the client streams, one plain JSON call when it wants the whole answer. tool_calls, logprobs
    and finish_reason come back as the upstream gave them."""

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
            "stream": request.stream,
        }
        if request.stream:
            payload["stream_options"] = {"include_usage": True}
        if p.seed is not None:
            payload["seed"] = p.seed
        if p.stop:
            payload["stop"] = list(p.stop)
        if p.presence_penalty:
            payload["presence_penalty"] = p.presence_penalty
        if p.frequency_penalty:
            payload["frequency_penalty"] = p.frequency_penalty
        payload.update(request.extra)  # validated and capability-checked by the caller
        if request.messages is not None:
            return "/chat/completions", {**payload, "messages": list(request.messages)}
        if request.prompt is None:
            raise InvalidRequest("either messages or prompt is required")
        return "/completions", {**payload, "prompt": request.prompt}

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[TextDelta, None]:
        self._running += 1
        try:
            if request.stream:
                async for delta in self._streamed(request):
                    yield delta
            else:
                yield await self._whole(request)
        finally:
            self._running -= 1

    async def _whole(self, request: GenerationRequest) -> TextDelta:
        """One non-streaming call: the whole answer as a single final delta."""
        path, payload = self._payload(request)
        body = await self._http.post_json(path, payload)
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise UpstreamError("upstream response has no choices", status=502)
        choice = choices[0]
        message = choice.get("message")
        if isinstance(message, dict):
            text = message.get("content") or ""
            tool_calls = message.get("tool_calls") or None
        else:
            text, tool_calls = choice.get("text") or "", None
        if not isinstance(text, str):
            raise UpstreamError("upstream response content is not text", status=502)
        usage = body.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or self.count_prompt_tokens(request))
        completion = int(usage.get("completion_tokens") or _estimate_tokens(text))
        return TextDelta(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion,
            finish_reason=str(choice.get("finish_reason") or "stop"),
            tool_calls=tool_calls,
            logprobs=choice.get("logprobs") or None,
        )

    async def _streamed(self, request: GenerationRequest) -> AsyncGenerator[TextDelta, None]:
        path, payload = self._payload(request)
        prompt_tokens = self.count_prompt_tokens(request)
        completion = 0
        finish: str | None = None
        usage: dict | None = None
        async for event in self._http.stream_events(path, payload):
            if event.get("usage"):
                usage = event["usage"]
            for choice in event.get("choices") or []:
                text = _choice_text(choice)
                finish = choice.get("finish_reason") or finish
                delta = choice.get("delta")
                tool_calls = delta.get("tool_calls") if isinstance(delta, dict) else None
                logprobs = choice.get("logprobs") or None
                if text or tool_calls or logprobs:
                    completion += 1
                    yield TextDelta(
                        text=text,
                        prompt_tokens=prompt_tokens,
                        completion_tokens=completion,
                        tool_calls=tool_calls or None,
                        logprobs=logprobs,
                    )
        if usage:
            prompt_tokens = int(usage.get("prompt_tokens", prompt_tokens))
            completion = int(usage.get("completion_tokens", completion))
        yield TextDelta(
            text="", prompt_tokens=prompt_tokens, completion_tokens=completion, finish_reason=finish or "stop"
        )

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
            payload = {"model": self._http.model, "input": list(texts)}
            body = await self._http.post_json("/embeddings", payload)
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
