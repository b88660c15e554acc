"""Backends that forward to an external OpenAI-compatible server (vLLM, TGI, Ollama, llama.cpp).

Requests go through one pooled keep-alive HTTP/1.1 client per deployment (http1.py). Errors never
name the upstream URL or echo a peer's text: the URL can hold credentials (`https://user:token@host/v1`)
and the messages reach clients and logs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from .base import Embedder, TextGenerator
from .http1 import Http1Pool, HttpError, HttpTimeout, Timeouts
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

DEFAULT_TIMEOUT = Timeouts()


def _json_bytes(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


class _UpstreamClient:
    """One pooled HTTP/1.1 keep-alive client per deployment and event loop (a pooled connection
    belongs to its loop): requests reuse open connections instead of a TCP (and TLS) handshake each."""

    def __init__(self, *, url: str, api_key: str, model: str, timeout: Timeouts, max_connections: int = 0):
        if not url:
            raise InvalidRequest("an upstream deployment needs its base URL")
        self.base_url = url.rstrip("/")
        self.model = model
        self._api_key = api_key
        self._timeout = timeout
        self._max_connections = max_connections or 256
        self._pool: Http1Pool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def pool(self) -> Http1Pool:
        loop = asyncio.get_running_loop()
        if self._pool is None or self._loop is not loop:
            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            try:
                self._pool = Http1Pool(
                    self.base_url, headers=headers, timeouts=self._timeout, max_connections=self._max_connections
                )
            except ValueError as exc:
                raise UpstreamError("the upstream URL is not a valid http(s) URL", status=502) from exc
            self._loop = loop
        return self._pool

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None and self._loop is asyncio.get_running_loop():  # else they end with their loop
            pool.close()

    async def post_json(self, path: str, payload: dict) -> dict:
        try:
            async with await self.pool().post(path, _json_bytes(payload)) as response:
                data = await response.read()
        except HttpError as exc:
            raise _transport_error(exc) from exc
        if response.status >= 400:
            raise _status_error(response.status, data.decode("utf-8", "replace"))
        try:
            body = json.loads(data)
        except ValueError as exc:
            raise UpstreamError("upstream sent invalid JSON", status=502) from exc
        if not isinstance(body, dict):
            raise UpstreamError("upstream sent a JSON value that is not an object", status=502)
        return body

    async def stream_events(self, path: str, payload: dict) -> AsyncIterator[dict]:
        """POST with stream=true and yield each SSE `data:` JSON object until [DONE]."""
        try:
            async with await self.pool().post(path, _json_bytes(payload)) as response:
                if response.status >= 400:
                    body = (await response.read()).decode("utf-8", "replace")
                    raise _status_error(response.status, body)
                pending = b""
                async for chunk in response.iter_bytes():
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        event = _sse_event(line)
                        if event is _DONE:
                            return
                        if event is not None:
                            yield event
        except HttpError as exc:
            raise _transport_error(exc) from exc


_DONE: dict = {}


def _sse_event(raw: bytes) -> dict | None:
    """The JSON object of one SSE `data:` line, _DONE for [DONE], None for any other line."""
    if not raw.startswith(b"data:"):
        return None  # comments, event names, blank separators
    data = raw[5:].strip()
    if data == b"[DONE]":
        return _DONE
    try:
        event = json.loads(data)
    except ValueError as exc:
        text = data[:200].decode("utf-8", "replace")
        raise UpstreamError(f"upstream sent invalid SSE data: {text!r}") from exc
    if isinstance(event, dict) and "error" in event:
        raise UpstreamError(f"upstream error: {_error_message(event)}")
    return event if isinstance(event, dict) else None


def _transport_error(exc: HttpError) -> UpstreamError:
    """The client's own fixed messages (never the URL); 504 for a timeout, else 502."""
    return UpstreamError(str(exc), status=504 if isinstance(exc, HttpTimeout) else 502)


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
        timeout: Timeouts | None = None,
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
            timeout=timeout if timeout is not None else Timeouts.each(deployment.timeout_s),
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
        timeout_s=DEFAULT_TIMEOUT.read,
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
