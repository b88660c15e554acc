"""The OpenAI-compatible API under /v1. Async views: validate, call services, format.

Every answer is JSON (or SSE); every error has OpenAI's shape (see inference.errors).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from functools import wraps
from typing import TypedDict

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from accounts.authentication import bearer_token, client_ip
from accounts.caller import Caller
from accounts.exceptions import ApiKeyRejected
from accounts.services import aapi_key_authenticate
from inference import openai_format as fmt
from inference import response_cache, services
from inference.engine.types import EmbedProgress, EngineError, GenerationRequest, TextDelta
from inference.errors import (
    ApiError,
    database_unavailable,
    from_api_key_rejection,
    from_engine_error,
    from_limit_exceeded,
    invalid,
)
from inference.serializers import ChatCompletionSerializer, CompletionSerializer, EmbeddingSerializer, validated
from llmos_portal import jsonbody
from usage.metering import LimitExceeded, RequestMeter, metered

logger = logging.getLogger(__name__)
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)  # connection errors, not IntegrityError


def openai_endpoint(endpoint: str, *methods: str) -> Callable:
    """Wrap an async /v1 view `view(request, meter)` in `metered()`: method check, CSRF exemption,
    domain errors -> OpenAI error JSON, rate-limit headers. Streams finish their own meter."""

    def decorate(view):
        @wraps(view)
        async def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponseBase:
            meter: RequestMeter | None = None
            try:
                async with metered(endpoint, request_id=getattr(request, "request_id", "")) as meter:
                    if request.method not in methods:
                        raise ApiError(
                            f"Method {request.method} is not allowed for {request.path}.",
                            status=405,
                            code="method_not_allowed",
                            headers={"Allow": ", ".join(methods)},
                        )
                    try:
                        response = await view(request, meter, *args, **kwargs)
                    except asyncio.CancelledError:
                        # The client left before the answer (the ASGI handler cancels the view):
                        # the work is cancelled on the way out; bill what it used.
                        meter.client_disconnected = True
                        raise
                    except DATABASE_UNAVAILABLE as exc:
                        logger.error("database unavailable while serving %s: %s", request.path, exc)
                        raise database_unavailable() from exc
                    meter.status = response.status_code
            except LimitExceeded as exc:
                response = from_limit_exceeded(exc).response()
            except ApiError as exc:
                response = exc.response()
            except Exception:
                logger.exception("unhandled error in %s", request.path)
                response = ApiError(
                    "The server had an error while processing your request.", status=500, type="server_error"
                ).response()
            for name, value in (meter.rate_limit_headers if meter else {}).items():
                response.headers.setdefault(name, value)
            return response

        return csrf_exempt(wrapper)

    return decorate


async def authenticate(request: HttpRequest, meter: RequestMeter) -> Caller:
    """Resolve the API key, then count the request against the caller's rate limits."""
    raw_key = bearer_token(request)
    if raw_key is None:
        raise ApiError(
            "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'.",
            status=401,
            code="invalid_api_key",
        )
    try:
        api_key = await aapi_key_authenticate(raw_key=raw_key, client_ip=client_ip(request))
    except ApiKeyRejected as exc:
        raise from_api_key_rejection(exc) from exc
    meter.caller = Caller.for_key(api_key)
    await meter.admit()
    return meter.caller


def json_body(request: HttpRequest) -> dict:
    try:
        raw = request.body
    except RequestDataTooBig as exc:
        raise invalid("The request body is too large.", code="request_too_large") from exc
    try:
        data = jsonbody.loads(raw)
    except jsonbody.JsonBodyError as exc:
        if exc.param is not None:
            raise invalid(exc.message, param=exc.param) from None
        raise invalid(f"{exc.message} Send a JSON object.", code="invalid_json") from None
    if not isinstance(data, dict):
        raise invalid("The request body must be a JSON object.", code="invalid_json")
    return data


def event_stream(events: AsyncIterator[bytes]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(events, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # let nginx pass events through as they come
    return response


# --- models --------------------------------------------------------------------------------------


def _model_object(spec) -> dict:
    return fmt.model_object(
        name=spec.name,
        created=spec.options.get("created", 0),
        owned_by=spec.options.get("owned_by", "llmos"),
        context_length=spec.context_length,
    )


@openai_endpoint("models", "GET")
async def models_list(request: HttpRequest, meter: RequestMeter) -> HttpResponseBase:
    caller = await authenticate(request, meter)
    specs = await services.models_for_caller(caller)
    return JsonResponse({"object": "list", "data": [_model_object(spec) for spec in specs]})


@openai_endpoint("models", "GET")
async def model_detail(request: HttpRequest, meter: RequestMeter, model_id: str) -> HttpResponseBase:
    caller = await authenticate(request, meter)
    for spec in await services.models_for_caller(caller):
        if spec.name == model_id:
            return JsonResponse(_model_object(spec))
    raise ApiError(f"The model '{model_id}' does not exist", status=404, param="model", code="model_not_found")


# --- chat and text completions ---------------------------------------------------------------------


class _ChunkFields(TypedDict):
    """What every chunk of one stream shares, besides its delta or text."""

    id: str
    created: int
    model: str
    index: int
    finish_reason: str | None
    with_usage_field: bool


class StreamFormat:
    """SSE chunks of one stream: one id and `created`, chat or text-completion shaped."""

    def __init__(self, *, chat: bool, id: str, model: str, include_usage: bool):
        self.chat, self.id, self.model, self.include_usage = chat, id, model, include_usage
        self.created = fmt.now()

    def _chunk(
        self, index: int, *, delta: dict, text: str, finish_reason: str | None, logprobs: dict | None = None
    ) -> bytes:
        common = _ChunkFields(
            id=self.id,
            created=self.created,
            model=self.model,
            index=index,
            finish_reason=finish_reason,
            with_usage_field=self.include_usage,
        )
        if self.chat:
            return fmt.sse(fmt.chat_chunk(delta=delta, logprobs=logprobs, **common))
        return fmt.sse(fmt.completion_chunk(text=text, logprobs=logprobs, **common))

    def role(self, index: int) -> bytes:
        return self._chunk(index, delta={"role": "assistant", "content": ""}, text="", finish_reason=None)

    def text(self, index: int, text: str) -> bytes:
        return self._chunk(index, delta={"content": text}, text=text, finish_reason=None)

    def delta(self, index: int, delta: TextDelta) -> bytes:
        """A chunk of text, with an upstream's tool_calls deltas and logprobs as it sent them."""
        if delta.tool_calls is None and delta.logprobs is None:
            return self.text(index, delta.text)
        body: dict = {"content": delta.text or None}
        if delta.tool_calls is not None:
            body["tool_calls"] = delta.tool_calls
        return self._chunk(index, delta=body, text=delta.text, finish_reason=None, logprobs=delta.logprobs)

    def finish(self, index: int, reason: str) -> bytes:
        return self._chunk(index, delta={}, text="", finish_reason=reason)

    def usage(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        return fmt.sse(
            fmt.usage_chunk(
                id=self.id,
                created=self.created,
                model=self.model,
                object="chat.completion.chunk" if self.chat else "text_completion",
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
            )
        )


async def _with_keepalive(items: AsyncIterator, every: float) -> AsyncGenerator:
    """`items`, with None whenever `every` seconds pass without one (0: never). Closing this
    cancels the pending read."""
    if every <= 0:
        async for item in items:
            yield item
        return
    pending: asyncio.Future | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(items))
            done, _ = await asyncio.wait({pending}, timeout=every)
            if not done:
                yield None
                continue
            try:
                item = pending.result()
            except StopAsyncIteration:
                return
            finally:
                pending = None
            yield item
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending


async def _completion_events(
    generation, primed, *, stream: StreamFormat, meter: RequestMeter
) -> AsyncGenerator[bytes, None]:
    """SSE events for a started generation. Its `finally` settles usage, also when the client leaves.
    A keep-alive comment goes out whenever SSE_KEEPALIVE_SECONDS pass without a token."""
    error_code = ""
    try:
        if stream.chat:
            for index in range(len(primed)):
                yield stream.role(index)
        async with (
            contextlib.aclosing(services.generation_deltas(generation, primed)) as deltas,
            contextlib.aclosing(_with_keepalive(deltas, settings.SSE_KEEPALIVE_SECONDS)) as events,
        ):
            async for item in events:
                if item is None:
                    yield fmt.SSE_KEEPALIVE
                    continue
                index, delta = item
                meter.completion_tokens = generation.total_completion_tokens
                if delta.text or delta.tool_calls is not None or delta.logprobs is not None:
                    yield stream.delta(index, delta)
                if delta.finish_reason is not None:
                    yield stream.finish(index, delta.finish_reason)
        if stream.include_usage:
            yield stream.usage(generation.prompt_tokens, generation.total_completion_tokens)
    except EngineError as exc:  # headers are sent: report in-band, as OpenAI does
        logger.warning("generation failed mid-stream: %s", exc)
        error_code = exc.code
        yield fmt.sse(from_engine_error(exc, model=stream.model).body())
    except (asyncio.CancelledError, GeneratorExit):
        meter.client_disconnected = True
        raise
    finally:
        meter.prompt_tokens = generation.prompt_tokens
        meter.completion_tokens = generation.total_completion_tokens
        await meter.finish(status=200, error_code=error_code)
    yield fmt.SSE_DONE


async def _late_events(start: asyncio.Future, *, stream: StreamFormat, meter: RequestMeter) -> AsyncIterator[bytes]:
    """A stream whose first token is slow (a long prefill, a queue, failover to another
    deployment): the headers go out now, keep-alive comments follow until it starts. An error
    before the first token is then reported in-band, as OpenAI does once a stream has begun."""
    try:
        while not start.done():
            yield fmt.SSE_KEEPALIVE
            await asyncio.wait({start}, timeout=settings.SSE_KEEPALIVE_SECONDS)
        generation, primed = start.result()
    except (asyncio.CancelledError, GeneratorExit):  # the client left while waiting
        start.cancel()
        if start.done() and not start.cancelled() and start.exception() is None:
            for _, started_stream in start.result()[1]:
                await started_stream.aclose()
        meter.client_disconnected = True
        await meter.finish(status=200)
        raise
    except Exception as exc:  # headers are sent: the error goes in-band
        if isinstance(exc, ApiError):
            error = exc
        elif isinstance(exc, LimitExceeded):
            error = from_limit_exceeded(exc)
        else:
            logger.exception("unhandled error before the first token of a stream")
            error = ApiError("The server had an error while processing your request.", status=500, type="server_error")
        await meter.finish(status=error.status, error_code=error.code or error.type)
        yield fmt.sse(error.body())
        yield fmt.SSE_DONE
        return
    meter.first_token()
    meter.prompt_tokens = generation.prompt_tokens
    async with contextlib.aclosing(_completion_events(generation, primed, stream=stream, meter=meter)) as events:
        async for event in events:
            yield event


async def _cached_events(cached: dict, *, stream: StreamFormat) -> AsyncIterator[bytes]:
    """Replay a cached completion as a stream: role, the whole text, finish, usage, [DONE]."""
    for index, (text, finish_reason) in enumerate(cached["choices"]):
        if stream.chat:
            yield stream.role(index)
        yield stream.text(index, text)
        yield stream.finish(index, finish_reason)
    if stream.include_usage:
        yield stream.usage(cached["prompt_tokens"], cached["completion_tokens"])
    yield fmt.SSE_DONE


async def _run_completion(request: HttpRequest, meter: RequestMeter, *, chat: bool) -> HttpResponseBase:
    caller = await authenticate(request, meter)
    data = validated(ChatCompletionSerializer if chat else CompletionSerializer, json_body(request))
    spec = await services.model_for_caller(data["model"], caller=caller, kind="chat")
    meter.model = spec.name
    meter.end_user = data.get("user") or None
    extra = services.passthrough_params(data, spec=spec)
    params = services.sampling_params(data, plan=caller.plan)
    streamed = bool(data.get("stream"))
    if chat:
        messages = tuple(services.chat_message(message) for message in data["messages"])
        generation_request = GenerationRequest(params=params, messages=messages, stream=streamed, extra=extra)
    else:
        generation_request = GenerationRequest(params=params, prompt=data["prompt"], stream=streamed, extra=extra)
    n = data.get("n") or 1
    response_id = fmt.new_id("chatcmpl" if chat else "cmpl")
    stream = None
    if streamed:
        include_usage = bool((data.get("stream_options") or {}).get("include_usage"))
        stream = StreamFormat(chat=chat, id=response_id, model=spec.name, include_usage=include_usage)

    cacheable = response_cache.is_cacheable(generation_request)
    key = (
        response_cache.cache_key(user_id=caller.user.pk, model=spec.name, request=generation_request, n=n)
        if cacheable
        else ""
    )
    cached = await response_cache.lookup(key) if cacheable else None
    if cached is not None:
        meter.cached = True
        meter.prompt_tokens, meter.completion_tokens = cached["prompt_tokens"], cached["completion_tokens"]
        meter.first_token()
        if stream:
            return event_stream(_cached_events(cached, stream=stream))
        return JsonResponse(_completion_body(chat, response_id, spec.name, cached))

    start = services.generation_start(
        model=spec.name, request=generation_request, n=n, check_prompt=meter.check_prompt_tokens
    )
    if stream and settings.SSE_KEEPALIVE_SECONDS > 0:
        # Errors before the first token keep their HTTP status when they come quickly; a slow
        # first token gets the headers and keep-alive comments meanwhile.
        started = asyncio.ensure_future(start)
        try:
            done, _ = await asyncio.wait({started}, timeout=settings.SSE_KEEPALIVE_SECONDS)
        except BaseException:
            started.cancel()
            raise
        if not done:
            meter.hand_over()
            return event_stream(_late_events(started, stream=stream, meter=meter))
        generation, primed = started.result()
    else:
        generation, primed = await start
    meter.first_token()
    meter.prompt_tokens = generation.prompt_tokens
    if stream:
        meter.hand_over()
        return event_stream(_completion_events(generation, primed, stream=stream, meter=meter))
    try:
        choices = await services.generation_collect(generation, primed)
    except EngineError as exc:
        raise from_engine_error(exc, model=spec.name) from exc
    finally:
        meter.prompt_tokens = generation.prompt_tokens
        meter.completion_tokens = generation.total_completion_tokens
    result = {
        "choices": choices,
        "prompt_tokens": generation.prompt_tokens,
        "completion_tokens": generation.total_completion_tokens,
        "extras": generation.extras,
    }
    if cacheable:
        await response_cache.store(
            key,
            choices=choices,
            prompt_tokens=generation.prompt_tokens,
            completion_tokens=generation.total_completion_tokens,
        )
    return JsonResponse(_completion_body(chat, response_id, spec.name, result))


def _completion_body(chat: bool, response_id: str, model: str, result: dict) -> dict:
    build = fmt.chat_completion if chat else fmt.text_completion
    return build(
        id=response_id,
        created=fmt.now(),
        model=model,
        choices=[tuple(choice) for choice in result["choices"]],
        prompt_tokens=result["prompt_tokens"],
        completion_tokens=result["completion_tokens"],
        extras=result.get("extras"),
    )


@openai_endpoint("chat.completions", "POST")
async def chat_completions(request: HttpRequest, meter: RequestMeter) -> HttpResponseBase:
    return await _run_completion(request, meter, chat=True)


@openai_endpoint("completions", "POST")
async def completions(request: HttpRequest, meter: RequestMeter) -> HttpResponseBase:
    return await _run_completion(request, meter, chat=False)


# --- embeddings ------------------------------------------------------------------------------------


@openai_endpoint("embeddings", "POST")
async def embeddings(request: HttpRequest, meter: RequestMeter) -> HttpResponseBase:
    caller = await authenticate(request, meter)
    data = validated(EmbeddingSerializer, json_body(request))
    spec = await services.model_for_caller(data["model"], caller=caller, kind="embedding")
    meter.model = spec.name
    meter.end_user = data.get("user") or None
    progress = EmbedProgress()
    try:
        result = await services.embeddings_create(model=spec.name, texts=data["input"], progress=progress)
    finally:
        meter.prompt_tokens = progress.prompt_tokens  # what was embedded, also when abandoned
    meter.prompt_tokens = result.prompt_tokens
    meter.first_token()
    dimensions = data.get("dimensions")
    if dimensions is not None and result.vectors and dimensions != len(result.vectors[0]):
        raise invalid(
            f"`{spec.name}` produces {len(result.vectors[0])}-dimensional embeddings; other sizes are not supported.",
            param="dimensions",
        )
    return JsonResponse(
        fmt.embedding_list(
            model=spec.name,
            vectors=result.vectors,
            prompt_tokens=result.prompt_tokens,
            encoding_format=data["encoding_format"],
        )
    )


@openai_endpoint("unknown", "GET", "POST", "PUT", "PATCH", "DELETE")
async def not_found(request: HttpRequest, meter: RequestMeter, rest: str = "") -> HttpResponseBase:
    raise ApiError(f"Unknown request URL: {request.method} {request.path}.", status=404, code="unknown_url")
