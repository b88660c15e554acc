"""One playground generation, from a websocket `generate` message to its last event.

The consumer stays thin: it parses frames, enforces the per-socket and per-user caps, and runs
`run_generation` in a task. This module validates the request with the /v1 serializers, applies
the caller's plan limits and records usage through the same `metered()` as the API, saves the
turns, and streams events through the `send` callback it is given.

Stopping is task cancellation: cancelling the task closes the engine stream (through
`contextlib.aclosing`), so the scheduler drops the sequence and frees its slot at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext, gettext_lazy

from accounts import selectors as account_selectors
from accounts.caller import Caller
from accounts.models import User
from inference import services as inference_services
from inference.engine.types import EngineError, GenerationRequest
from inference.errors import ApiError, from_engine_error, from_limit_exceeded, invalid
from inference.serializers import ChatCompletionSerializer, CompletionSerializer, validated
from knowledge import formats as knowledge_formats
from knowledge import retrieval
from knowledge import selectors as knowledge_selectors
from knowledge.models import KnowledgeBase
from playground import selectors, services
from playground.models import Conversation, Message
from usage.metering import LimitExceeded, RequestMeter, metered

logger = logging.getLogger(__name__)

ENDPOINT = "playground"
PARAM_KEYS = ("temperature", "top_p", "max_tokens", "stop", "seed")

Send = Callable[[dict], Awaitable[None]]


def max_concurrent_per_user() -> int:
    return settings.PLAYGROUND_MAX_CONCURRENT_PER_USER


class UserSlots:
    """Generations running per user, across all of the user's sockets in THIS process.

    With several worker processes each counts its own sockets, so a user may run up to
    (workers x limit) generations at once; the plan's rate limits still apply across processes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[int, int] = {}

    def acquire(self, user_id: int, limit: int) -> bool:
        with self._lock:
            if self._running.get(user_id, 0) >= limit:
                return False
            self._running[user_id] = self._running.get(user_id, 0) + 1
            return True

    def release(self, user_id: int) -> None:
        with self._lock:
            left = self._running.get(user_id, 0) - 1
            if left > 0:
                self._running[user_id] = left
            else:
                self._running.pop(user_id, None)

    def running(self, user_id: int) -> int:
        with self._lock:
            return self._running.get(user_id, 0)


user_slots = UserSlots()


@dataclass
class GenerationControl:
    """Shared between the consumer and its generation task: why the task was cancelled."""

    generation_id: str = field(default_factory=lambda: f"gen-{uuid.uuid4().hex[:20]}")
    stop_requested: bool = False
    disconnected: bool = False
    finishing: bool = False  # the stream has ended: saving and reporting must not be interrupted
    settled: bool = False  # usage recorded: the socket may start another generation

    @property
    def cancellable(self) -> bool:
        return not (self.stop_requested or self.disconnected or self.finishing or self.settled)


@dataclass(frozen=True)
class GenerateCommand:
    """A validated `generate` message."""

    mode: str
    model: str
    conversation_id: int | None
    system: str
    user_content: str  # the turn saved as the user's: the last chat message or the raw prompt
    data: dict  # serializer-validated request data (messages or prompt, sampling parameters)
    params: dict  # the parameters to remember on the conversation
    knowledge_base: str | None = None  # chat grounded on this knowledge base's passages

    def generation_request(self, *, plan, grounding: str = "") -> GenerationRequest:
        """The request for the engine; `grounding` (passages from a knowledge base) goes into
        the system message, after the user's own system prompt."""
        params = inference_services.sampling_params(self.data, plan=plan)
        if self.mode == Conversation.Mode.CHAT:
            messages = [{"role": m["role"], "content": m["content"]} for m in self.data["messages"]]
            if grounding:
                if messages[0]["role"] == "system":
                    messages[0] = {"role": "system", "content": f"{messages[0]['content']}\n\n{grounding}"}
                else:
                    messages.insert(0, {"role": "system", "content": grounding})
            return GenerationRequest(params=params, messages=tuple(messages))
        return GenerationRequest(params=params, prompt=self.data["prompt"])


def _clean_params(raw) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise invalid("`params` must be an object.", param="params")
    # The page sends empty fields as null or ""; they mean "the default".
    return {key: raw[key] for key in PARAM_KEYS if raw.get(key) not in (None, "", [])}


def parse_generate(payload: dict) -> GenerateCommand:
    """Validate a `generate` message with the /v1 serializers; raise ApiError (400) when it is wrong."""
    mode = payload.get("mode", Conversation.Mode.CHAT)
    if mode not in Conversation.Mode.values:
        raise invalid("`mode` must be 'chat' or 'completion'.", param="mode")
    conversation_id = payload.get("conversation_id")
    if conversation_id is not None and (isinstance(conversation_id, bool) or not isinstance(conversation_id, int)):
        raise invalid("`conversation_id` must be an integer or null.", param="conversation_id")
    system = payload.get("system") or ""
    if not isinstance(system, str):
        raise invalid("`system` must be a string.", param="system")
    knowledge_base = payload.get("knowledge_base") or None
    if knowledge_base is not None and (not isinstance(knowledge_base, str) or len(knowledge_base) > 40):
        raise invalid("`knowledge_base` must be a knowledge base id or null.", param="knowledge_base")
    if knowledge_base is not None and mode != Conversation.Mode.CHAT:
        raise invalid("A knowledge base grounds chats only.", param="knowledge_base")
    params = _clean_params(payload.get("params"))
    model = payload.get("model")
    if mode == Conversation.Mode.CHAT:
        messages = payload.get("messages")
        if not isinstance(messages, list) or not messages:
            raise invalid("`messages` must be a non-empty list.", param="messages")
        last = messages[-1]
        if not isinstance(last, dict) or last.get("role") != "user":
            raise invalid("The last message must be the user's.", param="messages")
        full = ([{"role": "system", "content": system}] if system.strip() else []) + messages
        data = validated(ChatCompletionSerializer, {"model": model, "messages": full, **params})
        user_content = data["messages"][-1]["content"]
    else:
        data = validated(CompletionSerializer, {"model": model, "prompt": payload.get("prompt"), **params})
        user_content = data["prompt"]
    remembered = {key: data[key] for key in PARAM_KEYS if data.get(key) is not None}
    if "stop" in remembered:
        remembered["stop"] = list(remembered["stop"])
    return GenerateCommand(
        mode=mode,
        model=data["model"],
        conversation_id=conversation_id,
        system=system,
        user_content=user_content,
        data=data,
        params=remembered,
        knowledge_base=knowledge_base,
    )


def _user_with_plan(user_id: int) -> User:
    return account_selectors.user_with_plan(user_id=user_id, active_only=True)


def _check_conversation(user: User, conversation_id: int | None) -> Conversation | None:
    """The user's own conversation, or a 404 `not_found` ApiError for anyone else's."""
    if conversation_id is None:
        return None
    try:
        return selectors.conversation_for_user(user=user, conversation_id=conversation_id)
    except Conversation.DoesNotExist:
        raise ApiError(
            "That conversation does not exist.", status=404, param="conversation_id", code="not_found"
        ) from None


def _check_knowledge_base(user: User, knowledge_base_id: str | None) -> KnowledgeBase | None:
    """The user's own knowledge base, or a 404 `not_found` ApiError for anyone else's."""
    if knowledge_base_id is None:
        return None
    base = knowledge_selectors.knowledge_base_for_user(user=user, knowledge_base_id=knowledge_base_id)
    if base is None:
        raise ApiError("That knowledge base does not exist.", status=404, param="knowledge_base", code="not_found")
    return base


GROUNDING_FOUND = (
    "Answer the user's last question from these passages of the knowledge base \u201c{name}\u201d, citing them "
    "by number like [1]. If they do not contain the answer, say so.\n\n{passages}"
)
GROUNDING_NOT_FOUND = (
    "The knowledge base \u201c{name}\u201d has no passage about the user's last question. Tell the user that "
    "the answer is not in the knowledge base; do not make one up."
)


def _open_conversation(
    user: User, conversation: Conversation | None, command: GenerateCommand, model: str
) -> Conversation:
    """Save the user's turn (in a new conversation if none), with the settings now used.

    Runs once the model has started, so a refused or failed request leaves no trace."""
    if conversation is None or not services.conversation_update_settings(
        conversation=conversation, model=model, mode=command.mode, system_prompt=command.system, params=command.params
    ):
        conversation = services.conversation_create(
            user=user, model=model, mode=command.mode, system_prompt=command.system, params=command.params
        )
    services.message_append(conversation=conversation, role=Message.Role.USER, content=command.user_content)
    return conversation


# The shared API errors are composed in English (as /v1 answers them); on a page in another
# language the playground shows this sentence for the code instead, the English text as `detail`.
PAGE_MESSAGES = {
    "rate_limit_exceeded": gettext_lazy("You are over your plan's rate limit. Wait a moment and try again."),
    "insufficient_quota": gettext_lazy("Your token budget for this period is used up."),
    "concurrency_limit_exceeded": gettext_lazy("Too many requests at once: wait until one has finished."),
    "prompt_too_long": gettext_lazy("The prompt is longer than your plan allows."),
    "context_length_exceeded": gettext_lazy(
        "The conversation is too long for this model: shorten it or lower the maximum tokens."
    ),
    "model_not_found": gettext_lazy("This model does not exist or is not available to you."),
    "overloaded": gettext_lazy("The model is busy. Try again in a moment."),
    "no_deployment_available": gettext_lazy("The model is unavailable right now. Try again in a moment."),
    "upstream_error": gettext_lazy("The model's server did not answer. Try again in a moment."),
    "model_load_error": gettext_lazy("The model could not be loaded. Tell the operators."),
    "service_unavailable": gettext_lazy("The service is temporarily unavailable. Try again in a moment."),
}


def error_event(exc: ApiError) -> dict:
    code = exc.code or exc.type
    event = {"type": "error", "code": code, "message": exc.message, "status": exc.status}
    page_message = PAGE_MESSAGES.get(code)
    if page_message is not None and not (translation.get_language() or "en").startswith("en"):
        event["message"], event["detail"] = str(page_message), exc.message
    if exc.param:
        event["param"] = exc.param
    if "Retry-After" in exc.headers:
        event["retry_after"] = int(exc.headers["Retry-After"])
    return event


def _usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


class PlaygroundGeneration:
    """The steps of one generation; `run_generation` strings them together inside `metered()`."""

    def __init__(self, *, control: GenerationControl, send: Send, meter: RequestMeter):
        self.control = control
        self.send = send
        self.meter = meter
        self.conversation: Conversation | None = None
        self.generation: inference_services.Generation | None = None
        self.parts: list[str] = []
        self.started_at = time.perf_counter()
        self.citations: dict | None = None  # the `citations` event of a grounded chat

    async def emit(self, event: dict) -> None:
        if self.control.disconnected:
            return
        try:
            await self.send(event)
        except Exception:  # the socket went away under us: keep settling usage
            logger.debug("could not send %s event", event.get("type"), exc_info=True)

    # ---- the steps, in order ---------------------------------------------------------------
    async def admit(self, user_id: int) -> User:
        """Load the user with their plan and count the request against their limits."""
        user = await database_sync_to_async(_user_with_plan)(user_id)
        self.meter.caller = Caller.for_user(user)
        await self.meter.admit()
        return user

    async def prepare(
        self, user: User, payload: dict
    ) -> tuple[GenerateCommand, GenerationRequest, Conversation | None]:
        """Validate the message, resolve the model and check the conversation belongs to the user."""
        command = parse_generate(payload)
        caller = self.meter.caller
        assert caller is not None, "admit() comes first"
        spec = await inference_services.model_for_caller(command.model, caller=caller, kind="chat")
        self.meter.model = spec.name
        existing = await database_sync_to_async(_check_conversation)(user, command.conversation_id)
        base = await database_sync_to_async(_check_knowledge_base)(user, command.knowledge_base)
        grounding = ""
        if base is not None:
            results = await retrieval.search_for_answer(
                knowledge_base=base, caller=caller, question=command.user_content, request_id=self.control.generation_id
            )
            self.citations = {
                "type": "citations",
                "knowledge_base": base.pk,
                "found": bool(results),
                "citations": [knowledge_formats.citation(result) for result in results],
            }
            if results:
                grounding = GROUNDING_FOUND.format(name=base.name, passages=retrieval.context_from(results))
            else:
                grounding = GROUNDING_NOT_FOUND.format(name=base.name)
        request = command.generation_request(plan=caller.plan, grounding=grounding)
        return command, request, existing

    async def start(
        self, user: User, command: GenerateCommand, request: GenerationRequest, existing: Conversation | None
    ) -> list:
        """Start the model, then save the user's turn and announce `started`."""
        self.started_at = time.perf_counter()
        generation, primed = await inference_services.generation_start(
            model=self.meter.model, request=request, n=1, check_prompt=self.meter.check_prompt_tokens
        )
        self.generation = generation
        self.meter.first_token()
        self.meter.prompt_tokens = generation.prompt_tokens
        self.meter.streamed = True
        try:  # until generation_deltas runs, closing the primed stream is up to us
            self.conversation = await database_sync_to_async(_open_conversation)(
                user, existing, command, self.meter.model
            )
            await self.emit(
                {
                    "type": "started",
                    "conversation_id": self.conversation.pk,
                    "conversation_title": self.conversation.title,
                    "generation_id": self.control.generation_id,
                    "model": self.meter.model,
                    "max_tokens": request.params.max_tokens,
                }
            )
            if self.citations is not None:
                await self.emit(self.citations)
        except BaseException:
            for _, stream in primed:
                await stream.aclose()
            raise
        return primed

    async def stream_tokens(self, primed: list) -> str:
        """Send each token as it comes; returns the finish reason."""
        assert self.generation is not None
        finish_reason = "stop"
        index = 0
        async with contextlib.aclosing(inference_services.generation_deltas(self.generation, primed)) as deltas:
            async for _, delta in deltas:
                self.meter.completion_tokens = self.generation.total_completion_tokens
                if delta.text:
                    self.parts.append(delta.text)
                    await self.emit({"type": "token", "text": delta.text, "index": index})
                    index += 1
                if delta.finish_reason is not None:
                    finish_reason = delta.finish_reason
        return finish_reason

    async def done(self, finish_reason: str) -> dict:
        """Save the reply; the `done` event."""
        assert self.generation is not None and self.conversation is not None
        self.control.finishing = True
        rate = self.tokens_per_s()
        message_id = await self.save_reply(finish_reason, rate)
        return {
            "type": "done",
            "finish_reason": finish_reason,
            "usage": _usage(self.generation.prompt_tokens, self.generation.total_completion_tokens),
            "tokens_per_s": rate,
            "conversation_id": self.conversation.pk,
            "message_id": message_id,
            "generation_id": self.control.generation_id,
        }

    # ---- the other endings ----------------------------------------------------------------
    async def failed_mid_stream(self, exc: EngineError) -> dict:
        """Keep what was generated, record the failure, say what happened."""
        logger.warning("playground generation failed mid-stream: %s", exc)
        api_error = from_engine_error(exc, model=self.meter.model)
        self.meter.fail(status=api_error.status, error_code=exc.code)
        await _settle(self.save_reply("error", self.tokens_per_s()))
        return error_event(api_error)

    async def stopped(self) -> dict:
        """Stopped by the user or abandoned by a disconnect: save the partial reply."""
        self.meter.client_disconnected = self.control.disconnected
        rate = self.tokens_per_s()
        await _settle(self.save_reply("cancelled", rate))
        generation = self.generation
        return {
            "type": "stopped",
            "usage": _usage(generation.prompt_tokens, generation.total_completion_tokens) if generation else None,
            "tokens_per_s": rate,
            "conversation_id": self.conversation.pk if self.conversation else None,
            "generation_id": self.control.generation_id,
        }

    # ---- helpers ----------------------------------------------------------------------------
    def tokens_per_s(self) -> float:
        elapsed = time.perf_counter() - self.started_at
        completion = self.generation.total_completion_tokens if self.generation else 0
        return round(completion / elapsed, 2) if elapsed > 0 and completion else 0.0

    async def save_reply(self, reason: str, rate: float) -> int | None:
        if self.conversation is None or self.generation is None:
            return None
        message = await database_sync_to_async(services.message_append)(
            conversation=self.conversation,
            role=Message.Role.ASSISTANT,
            content="".join(self.parts),
            prompt_tokens=self.generation.prompt_tokens,
            completion_tokens=self.generation.total_completion_tokens,
            tokens_per_s=rate,
            finish_reason=reason,
        )
        return message.pk if message else None


async def _generate(run: PlaygroundGeneration, *, user_id: int, payload: dict) -> dict:
    """The steps of a generation; returns its terminal event (`done`, or `error` mid-stream)."""
    user = await run.admit(user_id)
    command, request, existing = await run.prepare(user, payload)
    primed = await run.start(user, command, request, existing)
    try:
        finish_reason = await run.stream_tokens(primed)
    except EngineError as exc:
        return await run.failed_mid_stream(exc)
    return await run.done(finish_reason)


async def run_generation(
    *,
    user_id: int,
    payload: dict,
    control: GenerationControl,
    send: Send,
    on_settled: Callable[[], None] | None = None,
) -> None:
    """Run one generation to its end, streaming events through `send`.

    Exactly one terminal event per generation: `done`, `stopped` or `error` (none after a
    disconnect). Usage is recorded exactly once, by `metered()`, whatever happens. The terminal
    event goes out last, after usage is settled and `on_settled` has run, so a client may send
    the next `generate` as soon as it sees it.
    """
    terminal: dict | None = None
    run: PlaygroundGeneration | None = None
    try:
        async with metered(ENDPOINT, request_id=control.generation_id) as meter:
            run = PlaygroundGeneration(control=control, send=send, meter=meter)
            try:
                terminal = await _generate(run, user_id=user_id, payload=payload)
            except asyncio.CancelledError:
                terminal = await run.stopped()
                raise
    except LimitExceeded as exc:
        terminal = error_event(from_limit_exceeded(exc))
    except ApiError as exc:
        terminal = error_event(exc)
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("playground generation failed")
        message = gettext("The server had an error.")
        terminal = {"type": "error", "code": "server_error", "message": message, "status": 500}
    finally:
        control.settled = True
        if on_settled is not None:
            on_settled()
        if terminal is not None:
            await _emit_terminal(control, send, terminal)


async def _emit_terminal(control: GenerationControl, send: Send, event: dict) -> None:
    if control.disconnected:
        return
    try:
        await send(event)
    except Exception:
        logger.debug("could not send the %s event", event.get("type"), exc_info=True)


async def _settle(awaitable: Awaitable) -> None:
    """Await a best-effort write; a failure there must not hide the outcome we report."""
    try:
        await awaitable
    except Exception:
        logger.exception("saving the playground reply failed")
