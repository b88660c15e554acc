"""Run a batch line by line, each line metered (endpoint "batch") against the key's limits.

Lines run one at a time, at the engine's "batch" priority: the scheduler admits a line only when
no interactive request is waiting for a slot, and a batch never holds more than one slot (in a
Celery worker it does not share the server's engine at all). A rate-limited or overloaded line waits and is tried again
(not billed); any other error is the line's answer, in the error file.

Ownership: a run takes the batch over (`batch_run_start`), claims one line at a time and stores
each answer with its usage row in one transaction that checks the line is still its own, so a
run that died mid-line bills nothing and its line is run again by the next run.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from asgiref.sync import sync_to_async

from accounts.caller import Caller
from accounts.models import ApiKey
from accounts.selectors import plan_for_organization, user_with_plan
from batches import services
from batches.models import Batch, BatchLine
from inference import openai_format as fmt
from inference import services as inference
from inference.engine.types import GenerationRequest
from inference.errors import ApiError, from_limit_exceeded, invalid
from inference.serializers import ChatCompletionSerializer, CompletionSerializer, EmbeddingSerializer, validated
from usage.metering import LimitExceeded, RequestMeter, metered

logger = logging.getLogger(__name__)

MAX_WAIT_SECONDS = 10.0  # longest pause before retrying a rate-limited or overloaded line


async def _execute(endpoint: str, body: dict, caller: Caller, meter: RequestMeter) -> dict:
    """One line's request, as the /v1 endpoint would answer it (non-streaming, uncached)."""
    if endpoint == "/v1/embeddings":
        data = validated(EmbeddingSerializer, body)
        spec = await inference.model_for_caller(data["model"], caller=caller, kind="embedding")
        meter.end_user = data.get("user") or None
        meter.model = spec.name
        result = await inference.embeddings_create(model=spec.name, texts=data["input"])
        meter.prompt_tokens = result.prompt_tokens
        meter.first_token()
        return fmt.embedding_list(
            model=spec.name,
            vectors=result.vectors,
            prompt_tokens=result.prompt_tokens,
            encoding_format=data["encoding_format"],
        )
    chat = endpoint == "/v1/chat/completions"
    data = validated(ChatCompletionSerializer if chat else CompletionSerializer, body)
    if data.get("stream"):
        raise invalid("Batch requests are not streamed.", param="stream")
    spec = await inference.model_for_caller(data["model"], caller=caller, kind="chat")
    meter.model = spec.name
    meter.end_user = data.get("user") or None
    extra = inference.passthrough_params(data, spec=spec)
    params = inference.sampling_params(data, plan=caller.plan)
    if chat:
        messages = tuple(inference.chat_message(message) for message in data["messages"])
        request = GenerationRequest(params=params, messages=messages, priority="batch", stream=False, extra=extra)
    else:
        request = GenerationRequest(params=params, prompt=data["prompt"], priority="batch", stream=False, extra=extra)
    generation, choices = await inference.generation_run(
        model=spec.name, request=request, n=data.get("n") or 1, check_prompt=meter.check_prompt_tokens
    )
    meter.first_token()
    meter.prompt_tokens, meter.completion_tokens = generation.prompt_tokens, generation.total_completion_tokens
    build = fmt.chat_completion if chat else fmt.text_completion
    return build(
        id=fmt.new_id("chatcmpl" if chat else "cmpl"),
        created=fmt.now(),
        model=spec.name,
        choices=choices,
        prompt_tokens=generation.prompt_tokens,
        completion_tokens=generation.total_completion_tokens,
        extras=generation.extras,
    )


def _caller_for(batch_id: str) -> Caller | ApiError:
    """The batch's key as it is now: a revoked or expired key fails the remaining lines."""
    batch = Batch.objects.select_related("api_key__user__plan", "api_key__organization__plan").get(pk=batch_id)
    api_key: ApiKey | None = batch.api_key
    if api_key is None or not api_key.is_active:
        return ApiError("The API key that created this batch is no longer valid.", status=401, code="invalid_api_key")
    api_key.user = user_with_plan(user_id=api_key.user_id)  # no plan: the default plan, as on /v1
    if api_key.organization is not None:  # an organization's key: its plan governs, as on /v1
        api_key.organization.plan = plan_for_organization(organization=api_key.organization)
    return Caller.for_key(api_key)


def _status(batch_id: str) -> str:
    return Batch.objects.filter(pk=batch_id).values_list("status", flat=True).get()


async def _run_line(batch: Batch, line: BatchLine, run_id: str) -> None:
    while True:
        caller = await sync_to_async(_caller_for)(batch.pk)
        meter: RequestMeter | None = None
        retry_after = 0.0
        try:
            if isinstance(caller, ApiError):
                raise caller
            async with metered("batch", request_id=line.request_id, caller=caller, defer_usage=True) as meter:
                await meter.admit()
                response = await _execute(batch.endpoint, line.body, caller, meter)
            status = 200
        except LimitExceeded as exc:
            if exc.code != "rate_limit_exceeded":  # a spent budget would mean waiting up to a day
                error = from_limit_exceeded(exc)
                status, response = error.status, error.body()
            else:
                retry_after = float(exc.headers.get("Retry-After", "1"))
        except ApiError as exc:
            if exc.status == 503:
                retry_after = float(exc.headers.get("Retry-After", "1"))
            else:
                status, response = exc.status, exc.body()
        except Exception:
            logger.exception("batch %s line %s failed", batch.pk, line.index)
            error = ApiError("The server had an error while processing this request.", status=500, type="server_error")
            status, response = error.status, error.body()
        if retry_after:
            # Not served: nothing is billed for this attempt. Wait, unless the batch is being cancelled.
            if await sync_to_async(_status)(batch.pk) != Batch.Status.IN_PROGRESS:
                return
            await asyncio.sleep(min(retry_after, MAX_WAIT_SECONDS))
            continue
        usage = meter.usage_event if meter is not None else None
        stored = await sync_to_async(services.batch_line_complete)(
            line_id=line.pk, run_id=run_id, status_code=status, response=response, usage=usage
        )
        if not stored:
            logger.warning("batch %s line %s: taken over by another run; answer dropped", batch.pk, line.index)
        return


async def batch_run(*, batch_id: str) -> Batch | None:
    """Run the batch's remaining lines, then finalize it. Safe to call again after a crash."""
    run_id = uuid.uuid4().hex
    batch = await sync_to_async(services.batch_run_start)(batch_id=batch_id, run_id=run_id)
    if batch is None:
        return None
    while True:
        line = await sync_to_async(services.batch_line_claim)(batch_id=batch_id, run_id=run_id)
        if line is None:
            break
        await _run_line(batch, line, run_id)
    return await sync_to_async(services.batch_finalize)(batch_id=batch_id, run_id=run_id)
