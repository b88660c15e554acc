"""Running inference for a caller: model access, parameters, priming and merging streams.

Views stay thin: they validate, call these, and format the result for their wire protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from accounts.caller import Caller
from accounts.models import Plan
from inference import errors
from inference.engine.types import (
    EmbedProgress,
    EngineError,
    GenerationRequest,
    ModelLoadError,
    ModelSpec,
    Overloaded,
    SamplingParams,
    TextDelta,
    UpstreamError,
)
from inference.registry import aenabled_specs
from inference.runtime import current_manager

DEFAULT_MAX_TOKENS = 256
logger = logging.getLogger(__name__)

TextStream = AsyncGenerator[TextDelta, None]  # what TextGenerator.stream() returns


async def models_for_caller(caller: Caller) -> list:
    specs = await aenabled_specs()
    return [spec for name, spec in sorted(specs.items()) if caller.may_use(name)]


async def model_for_caller(name: str, *, caller: Caller, kind: str):
    """The spec of an enabled model this caller may use, of the right kind, or an ApiError."""
    spec = (await aenabled_specs()).get(name)
    if spec is None:
        raise errors.model_not_found(name)
    if not caller.may_use(name):
        raise errors.ApiError(
            f"Your API key or plan does not allow the model `{name}`.",
            status=403,
            type="permission_error",
            param="model",
            code="model_not_allowed",
        )
    if spec.kind != kind:
        expected = "an embedding" if kind == "embedding" else "a chat/completion"
        raise errors.invalid(f"`{name}` is not {expected} model.", param="model", code="wrong_model_kind")
    return spec


# Request parameter -> the capability a model needs to honour it (see ModelSpec.capabilities).
PASSTHROUGH = {
    "tools": "tools",
    "tool_choice": "tools",
    "parallel_tool_calls": "tools",
    "response_format": "response_format",
    "logprobs": "logprobs",
    "top_logprobs": "logprobs",
    "logit_bias": "logit_bias",
}


def _is_default(name: str, value) -> bool:
    """A value that asks for nothing beyond plain generation: honoured by every model."""
    if value is None:
        return True
    if name == "parallel_tool_calls":
        return False  # true or false: either says something about tool calls
    if value is False or value == [] or value == {}:
        return True
    if name == "tool_choice":
        return value == "none"
    if name == "response_format":
        return value.get("type") == "text"
    return False


def passthrough_params(data: dict, *, spec: ModelSpec) -> dict[str, Any]:
    """The optional OpenAI parameters to forward verbatim to the model's upstream (all those it
    supports, as sent); a 400 naming the first one the model cannot honour (never silently
    dropped; a value that asks for nothing, like tool_choice "none", is honoured by any model).
    `user` is always accepted (and forwarded to upstreams; in-process runners have no use for it)."""
    extra: dict[str, Any] = {}
    for name, capability in PASSTHROUGH.items():
        if name not in data or data[name] is None:
            continue
        value = data[name]
        if capability in spec.capabilities:
            extra[name] = value
        elif not _is_default(name, value):
            raise errors.ApiError(
                f"The model `{spec.name}` does not support the parameter `{name}`.",
                status=400,
                type="invalid_request_error",
                param=name,
                code="unsupported_parameter",
            )
    for index, message in enumerate(data.get("messages") or ()):
        for name in ("tool_calls", "tool_call_id"):
            if name in message and "tools" not in spec.capabilities:
                raise errors.ApiError(
                    f"The model `{spec.name}` does not support tool calling.",
                    status=400,
                    type="invalid_request_error",
                    param=f"messages[{index}].{name}",
                    code="unsupported_parameter",
                )
    if data.get("user"):
        extra["user"] = data["user"]
    return extra


def chat_message(message: dict) -> dict:
    """A validated message as the engine takes it: role and content, and the tool fields."""
    out = {"role": message["role"], "content": message["content"]}
    for name in ("tool_calls", "tool_call_id", "name"):
        if name in message and (name != "name" or message.get("tool_call_id") or message.get("tool_calls")):
            out[name] = message[name]
    return out


def sampling_params(data: dict, *, plan: Plan) -> SamplingParams:
    """SamplingParams from validated request data; the plan's per-request cap bounds max_tokens."""
    max_tokens = min(data.get("max_tokens") or DEFAULT_MAX_TOKENS, plan.max_tokens_per_request)
    temperature = data.get("temperature")
    top_p = data.get("top_p")
    if top_p == 0:  # only the most likely token: greedy decoding (OpenAI accepts 0 too)
        temperature, top_p = 0.0, 1.0
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=1.0 if temperature is None else temperature,
        top_p=1.0 if top_p is None else top_p,
        seed=data.get("seed"),
        stop=data.get("stop") or (),
        presence_penalty=data.get("presence_penalty") or 0.0,
        frequency_penalty=data.get("frequency_penalty") or 0.0,
    )


def _choice_request(request: GenerationRequest, index: int) -> GenerationRequest:
    """Choice i of n: a seeded request gets seed+i, so the choices differ but stay reproducible."""
    if index == 0 or request.params.seed is None:
        return request
    return replace(request, params=replace(request.params, seed=request.params.seed + index))


@dataclass
class Generation:
    """A generation in progress: what it yielded so far, kept for usage accounting."""

    prompt_tokens: int = 0
    completion_tokens: list[int] = field(default_factory=list)
    # per choice, what an upstream returned besides text: {"tool_calls": [...], "logprobs": {...}}
    extras: list[dict] = field(default_factory=list)

    @property
    def total_completion_tokens(self) -> int:
        return sum(self.completion_tokens)


async def _prime(stream: TextStream) -> tuple[TextDelta, TextStream]:
    """Wait for the first delta, so queueing and validation errors surface before any byte is sent."""
    try:
        first = await anext(stream)
    except BaseException:
        with contextlib.suppress(Exception):
            await stream.aclose()
        raise
    return first, stream


async def generation_start(
    *, model: str, request: GenerationRequest, n: int, check_prompt: Callable[[int], None] | None = None
) -> tuple[Generation, list[tuple[TextDelta, TextStream]]]:
    """Start n choices of a generation; raise ApiError for anything that fails before the first token.

    `check_prompt(prompt_tokens)` (the meter's plan cap) may refuse the prompt before any model
    time is spent on it. When every deployment of the model fails, its fallback models are tried
    in order (those that honour the request's parameters)."""
    chain = await _model_chain(model, kind="chat", extra=request.extra)
    for position, name in enumerate(chain):
        try:
            return await _generation_start_on(model=name, request=request, n=n, check_prompt=check_prompt)
        except errors.ApiError as exc:
            cause = exc.__cause__
            if position + 1 == len(chain) or not isinstance(cause, FALLBACK_ON):
                if position and isinstance(cause, EngineError):
                    raise errors.from_engine_error(cause, model=model) from cause
                raise
            logger.warning("model %s failed (%s); trying its fallback %s", name, exc.code, chain[position + 1])
    raise AssertionError("unreachable: the chain holds at least the model")


# Failures of a whole model that its fallbacks may not have.
FALLBACK_ON = (UpstreamError, Overloaded, ModelLoadError)


async def _model_chain(model: str, *, kind: str, extra: Mapping[str, Any]) -> list[str]:
    """The model, then its enabled fallbacks of the same kind that support the request's parameters."""
    specs = await aenabled_specs()
    spec = specs.get(model)
    chain = [model]
    for name in spec.fallbacks if spec is not None else ():
        fallback = specs.get(name)
        if fallback is None or fallback.kind != kind or name in chain:
            continue
        if any(PASSTHROUGH[key] not in fallback.capabilities for key in extra if key in PASSTHROUGH):
            continue
        chain.append(name)
    return chain


async def _generation_start_on(
    *, model: str, request: GenerationRequest, n: int, check_prompt: Callable[[int], None] | None
) -> tuple[Generation, list[tuple[TextDelta, TextStream]]]:
    manager = await current_manager()
    try:
        generator = await manager.get_text_generator(model)
        if check_prompt is not None:
            prompt_tokens = generator.count_prompt_tokens(request)
            if prompt_tokens < generator.context_length:  # longer: the engine's context error says more
                check_prompt(prompt_tokens)
        primed = []
        try:
            for index in range(n):
                primed.append(await _prime(generator.stream(_choice_request(request, index))))
        except BaseException:
            for _, stream in primed:
                await stream.aclose()
            raise
    except EngineError as exc:
        raise errors.from_engine_error(exc, model=model) from exc
    generation = Generation(
        prompt_tokens=primed[0][0].prompt_tokens, completion_tokens=[0] * n, extras=[{} for _ in range(n)]
    )
    return generation, primed


async def generation_deltas(
    generation: Generation, primed: list[tuple[TextDelta, TextStream]]
) -> AsyncGenerator[tuple[int, TextDelta], None]:
    """(choice index, delta) from all choices as they arrive. Closing this closes every stream."""
    if len(primed) == 1:  # the common case: no tasks, no queue
        first, stream = primed[0]
        try:
            generation.completion_tokens[0] = first.completion_tokens
            yield 0, first
            if first.finish_reason is None:
                async for delta in stream:
                    generation.completion_tokens[0] = delta.completion_tokens
                    if delta.finish_reason is not None:  # an upstream's exact count, at the end
                        generation.prompt_tokens = delta.prompt_tokens
                    yield 0, delta
        finally:
            await stream.aclose()
        return

    queue: asyncio.Queue = asyncio.Queue()

    async def drain(index: int, first: TextDelta, stream: TextStream) -> None:
        try:
            await queue.put((index, first))
            if first.finish_reason is None:
                async for delta in stream:
                    await queue.put((index, delta))
        except Exception as exc:
            await queue.put((index, exc))
        finally:
            await stream.aclose()

    tasks = [asyncio.create_task(drain(i, first, stream)) for i, (first, stream) in enumerate(primed)]
    finished = 0
    try:
        while finished < len(tasks):
            index, item = await queue.get()
            if isinstance(item, Exception):
                raise item
            generation.completion_tokens[index] = item.completion_tokens
            if item.finish_reason is not None:
                finished += 1
                if index == 0:
                    generation.prompt_tokens = item.prompt_tokens
            yield index, item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def generation_collect(generation: Generation, primed) -> list[tuple[str, str]]:
    """Run started choices to the end: [(text, finish_reason)] per choice."""
    texts: list[list[str]] = [[] for _ in primed]
    reasons: list[str] = ["stop"] * len(primed)
    async with contextlib.aclosing(generation_deltas(generation, primed)) as deltas:
        async for index, delta in deltas:
            texts[index].append(delta.text)
            if delta.finish_reason is not None:
                reasons[index] = delta.finish_reason
            if delta.tool_calls or delta.logprobs:
                _merge_extras(generation.extras[index], delta)
    return [("".join(parts), reason) for parts, reason in zip(texts, reasons, strict=True)]


def _merge_extras(extras: dict, delta: TextDelta) -> None:
    """Collect tool_calls and logprobs (a non-streamed upstream answer has each in one delta)."""
    if delta.tool_calls:
        extras.setdefault("tool_calls", []).extend(delta.tool_calls)
    if delta.logprobs:
        merged = extras.setdefault("logprobs", {})
        for key, value in delta.logprobs.items():
            if isinstance(value, list) and isinstance(merged.get(key), list):
                merged[key] = merged[key] + value
            else:
                merged[key] = value


async def generation_run(
    *, model: str, request: GenerationRequest, n: int, check_prompt: Callable[[int], None] | None = None
) -> tuple[Generation, list[tuple[str, str]]]:
    """Start and finish n choices; returns usage and [(text, finish_reason)] per choice."""
    generation, primed = await generation_start(model=model, request=request, n=n, check_prompt=check_prompt)
    try:
        return generation, await generation_collect(generation, primed)
    except EngineError as exc:
        raise errors.from_engine_error(exc, model=model) from exc


async def embeddings_create(*, model: str, texts: list[str], progress: EmbedProgress | None = None):
    """Embed `texts`. Cancelling stops the work between batches; `progress.prompt_tokens` then
    holds what was embedded, for billing. Fallback models are tried when every deployment fails."""
    manager = await current_manager()
    chain = await _model_chain(model, kind="embedding", extra={})
    for position, name in enumerate(chain):
        try:
            embedder = await manager.get_embedder(name)
            return await embedder.embed(texts, progress)
        except FALLBACK_ON as exc:
            if position + 1 == len(chain):
                raise errors.from_engine_error(exc, model=model) from exc
            logger.warning("model %s failed (%s); trying its fallback %s", name, exc.code, chain[position + 1])
        except EngineError as exc:
            raise errors.from_engine_error(exc, model=model) from exc
    raise AssertionError("unreachable: the chain holds at least the model")
