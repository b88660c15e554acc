"""Running inference for a caller: model access, parameters, priming and merging streams.

Views stay thin: they validate, call these, and format the result for their wire protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field, replace

from accounts.caller import Caller
from accounts.models import Plan
from inference import errors
from inference.engine.types import EmbedProgress, EngineError, GenerationRequest, SamplingParams, TextDelta
from inference.registry import aenabled_specs
from inference.runtime import current_manager

DEFAULT_MAX_TOKENS = 256

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
    time is spent on it."""
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
    generation = Generation(prompt_tokens=primed[0][0].prompt_tokens, completion_tokens=[0] * n)
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
    return [("".join(parts), reason) for parts, reason in zip(texts, reasons, strict=True)]


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
    holds what was embedded, for billing."""
    manager = await current_manager()
    try:
        embedder = await manager.get_embedder(model)
        return await embedder.embed(texts, progress)
    except EngineError as exc:
        raise errors.from_engine_error(exc, model=model) from exc
