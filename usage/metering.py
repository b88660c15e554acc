"""Metering of one inference request: limits before, usage and metrics after.

Every entry point (/v1, the native tasks, the playground's websocket and its HTTP endpoint) runs
its request inside ``metered()``:

    async with metered("chat.completions", request_id=rid) as meter:
        meter.caller = caller
        await meter.admit()          # raises LimitExceeded when over a limit
        ...                          # set meter.model, meter.prompt_tokens, ...
        meter.hand_over()            # only a stream: its own end calls meter.finish()

The meter is finished exactly once: on a normal exit (with ``meter.status`` / ``meter.error_code``,
which a caller may set when it answers an error itself), on any exception (with the status and
code that exception carries, 500 ``server_error`` for anything unexpected), or, after
``hand_over()``, by the stream when it ends or its client leaves. Finishing queues the usage row,
adds the tokens to the caller's windows and updates the request metrics.

Refusal is the domain exception ``LimitExceeded``; each API layer maps it to its own error shape.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from usage import budgets, limits, metrics
from usage.recorder import UsageEvent, recorder

if TYPE_CHECKING:
    from accounts.caller import Caller


class LimitExceeded(Exception):
    """The caller is over a rate limit (`rate_limit_exceeded`), a budget (`insufficient_quota`),
    their concurrent requests (`concurrency_limit_exceeded`), or sent a prompt longer than their
    plan allows (`prompt_too_long`, status 400: retrying the same request cannot help)."""

    def __init__(self, message: str, *, code: str, headers: dict[str, str], status: int = 429, limit: str = "requests"):
        super().__init__(message)
        self.message = message
        self.code = code
        self.headers = headers
        self.status = status
        self.limit = limit  # what ran out: "requests" (rate, concurrency) or "tokens" (rate, budget)


CONCURRENCY_RETRY_SECONDS = 1


def _merge_headers(user_headers: dict[str, str], key_headers: dict[str, str]) -> dict[str, str]:
    """The x-ratelimit-* headers of whichever window (the user's or the key's) has less left."""
    merged = dict(user_headers)
    for kind in ("requests", "tokens"):
        remaining = f"x-ratelimit-remaining-{kind}"
        if remaining in key_headers and (
            remaining not in merged or int(key_headers[remaining]) < int(merged[remaining])
        ):
            for name in (f"x-ratelimit-limit-{kind}", remaining, f"x-ratelimit-reset-{kind}"):
                merged[name] = key_headers[name]
    if "Retry-After" in key_headers:
        merged["Retry-After"] = key_headers["Retry-After"]
    return merged


@dataclass
class RequestMeter:
    endpoint: str
    request_id: str = ""
    caller: Caller | None = None  # set once authenticated; nobody is billed before that
    model: str = ""
    end_user: str | None = None  # the request's OpenAI `user` field
    streamed: bool = False
    cached: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    client_disconnected: bool = False
    status: int = 200
    error_code: str = ""
    rate_limit_headers: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    ttft_s: float | None = None
    handed_over: bool = False
    finished: bool = False
    # A caller that must write the usage row in its own transaction (batch lines: the row and the
    # line's result together) sets this and takes `usage_event` instead of the background recorder.
    defer_usage: bool = False
    usage_event: UsageEvent | None = None
    slot: limits.Slot | None = None
    key_windows: bool = False  # the key sets its own (lower) limits: count it on its own too
    budget_remaining: int | None = None  # tokens left this month under the tightest budget

    @property
    def user_subject(self) -> str:
        """Plan limits are counted per user, whichever key (or page) the request came through;
        an organization's keys are counted per organization (its plan governs them)."""
        assert self.caller is not None
        return budgets.billed_subject(user_id=self.caller.user.pk, organization_id=self.caller.organization_id)

    @property
    def key_subject(self) -> str | None:
        assert self.caller is not None
        api_key = self.caller.api_key
        return f"key:{api_key.pk}" if api_key is not None else None

    async def admit(self) -> None:
        """Count the request against the caller's limits and take a concurrency slot; raise
        LimitExceeded when over. The slot is given back by finish(), exactly once."""
        assert self.caller is not None, "admit() needs an authenticated caller"
        plan = self.caller.plan
        await self._check_budgets()
        decision = await limits.check_request(subject=self.user_subject, limits=limits.plan_limits(plan))
        headers = decision.headers
        refusal = None if decision.allowed else decision
        own_limits = limits.key_limits(self.caller.api_key, plan)
        key_subject = self.key_subject
        if own_limits is not None and key_subject is not None:
            self.key_windows = True
            key_decision = await limits.check_request(subject=key_subject, limits=own_limits)
            headers = _merge_headers(headers, key_decision.headers)
            if refusal is None and not key_decision.allowed:
                refusal = key_decision
        self.rate_limit_headers = headers
        if refusal is not None:
            raise LimitExceeded(
                refusal.message,
                code=refusal.code or "rate_limit_exceeded",
                headers=headers,
                limit=refusal.limit or "requests",
            )
        slot_subject = key_subject or self.user_subject
        self.slot = await limits.acquire_slot(subject=slot_subject, limit=plan.max_concurrent_requests)
        if self.slot is None:
            retry = {**headers, "Retry-After": str(CONCURRENCY_RETRY_SECONDS)}
            raise LimitExceeded(
                f"Too many concurrent requests: your plan allows {plan.max_concurrent_requests} at once"
                f" per {'API key' if key_subject else 'user'}. Retry when one has finished.",
                code="concurrency_limit_exceeded",
                headers=retry,
            )

    async def _check_budgets(self) -> None:
        """Refuse (429 insufficient_quota) when a monthly budget is spent: one cache read, and
        none at all when no budget governs the caller."""
        assert self.caller is not None
        governing = budgets.budgets_for(self.caller)
        if not governing:
            return
        totals = await budgets.amonth_totals([budget.subject for budget in governing])
        spent = budgets.exhausted(governing, totals)
        if spent is not None:
            retry = str(budgets.seconds_to_next_month())
            raise LimitExceeded(
                f"You exceeded your monthly token budget ({spent.tokens} tokens, {spent.subject.split(':')[0]})."
                " It renews on the 1st of next month (UTC).",
                code="insufficient_quota",
                headers={"Retry-After": retry},
            )
        self.budget_remaining = budgets.remaining(governing, totals)

    def check_prompt_tokens(self, prompt_tokens: int) -> None:
        """Refuse a prompt longer than the plan allows (before any model time is spent on it).
        An admitted prompt is on the meter from here on: a request abandoned during its prefill
        is billed for it."""
        assert self.caller is not None
        cap = self.caller.plan.max_prompt_tokens_per_request
        if prompt_tokens > cap:
            raise LimitExceeded(
                f"Your prompt has {prompt_tokens} tokens; your plan allows at most {cap} per request.",
                code="prompt_too_long",
                headers={},
                status=400,
            )
        if self.budget_remaining is not None and prompt_tokens > self.budget_remaining:
            raise LimitExceeded(
                f"This request would exceed your monthly token budget: its prompt has {prompt_tokens} tokens"
                f" and {self.budget_remaining} are left this month.",
                code="insufficient_quota",
                headers={"Retry-After": str(budgets.seconds_to_next_month())},
            )
        self.prompt_tokens = prompt_tokens

    def first_token(self) -> None:
        if self.ttft_s is None:
            self.ttft_s = time.perf_counter() - self.started

    def fail(self, *, status: int, error_code: str) -> None:
        """The outcome to record when the caller answers an error itself instead of raising."""
        self.status, self.error_code = status, error_code

    def hand_over(self) -> None:
        """A stream takes over: `metered()` leaves finishing to the stream's end (its `finally`)."""
        self.streamed = True
        self.handed_over = True

    async def finish(self, *, status: int | None = None, error_code: str | None = None) -> None:
        """Record the request once: metrics, the usage row, the caller's token windows."""
        if self.finished:
            return
        self.finished = True
        if self.slot is not None:
            await self.slot.release()
        if status is not None:
            self.status = status
        if error_code is not None:
            self.error_code = error_code
        if self.client_disconnected and not self.error_code:
            self.error_code = "client_disconnected"
        latency_s = time.perf_counter() - self.started
        metrics.observe_request(
            endpoint=self.endpoint,
            model=self.model,
            status=self.status,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            latency_s=latency_s,
            ttft_s=self.ttft_s,
        )
        if self.caller is None:
            return  # unauthenticated: nobody to bill
        api_key = self.caller.api_key
        event = UsageEvent(
            user_id=self.caller.user.pk,
            api_key_id=api_key.pk if api_key is not None else None,
            organization_id=self.caller.organization_id,
            model=self.model,
            endpoint=self.endpoint,
            status_code=self.status,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            latency_ms=int(latency_s * 1000),
            ttft_ms=None if self.ttft_s is None else int(self.ttft_s * 1000),
            error_code=self.error_code,
            cached=self.cached,
            streamed=self.streamed,
            client_disconnected=self.client_disconnected,
            request_id=self.request_id,
            end_user=self.end_user or "",
        )
        if self.defer_usage:
            self.usage_event = event
        else:
            recorder().record(event)
        if not self.cached:
            tokens = self.prompt_tokens + self.completion_tokens
            await limits.record_tokens(subject=self.user_subject, tokens=tokens)
            if self.key_windows and self.key_subject is not None:
                await limits.record_tokens(subject=self.key_subject, tokens=tokens)


def outcome_of(exc: BaseException, meter: RequestMeter) -> tuple[int, str]:
    """(status, error code) to record for a request that ended with `exc`.

    Domain errors carry their own: LimitExceeded and the API layers' errors have `status` and
    `code` (or `type`); DRF's exceptions have `status_code`. A cancelled task is a stopped or
    abandoned request (status 200: the tokens it produced were served); anything else is a 500.
    """
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        return meter.status, meter.error_code or ("client_disconnected" if meter.client_disconnected else "cancelled")
    status = getattr(exc, "status", None)
    if not isinstance(status, int):
        status = getattr(exc, "status_code", None)
    if not isinstance(status, int) or status < 400:
        return 500, "server_error"
    code = getattr(exc, "code", None) or getattr(exc, "type", None)
    if not isinstance(code, str) or not code:
        code = "invalid_request" if status == 400 else "error"
    return status, code


@asynccontextmanager
async def metered(
    endpoint: str, *, request_id: str = "", caller: Caller | None = None, defer_usage: bool = False
) -> AsyncIterator[RequestMeter]:
    """Meter one request; see the module docstring. Exceptions are recorded, then re-raised."""
    meter = RequestMeter(endpoint=endpoint, request_id=request_id, caller=caller, defer_usage=defer_usage)
    try:
        yield meter
    except BaseException as exc:
        status, code = outcome_of(exc, meter)
        await meter.finish(status=status, error_code=code)
        raise
    if not meter.handed_over:
        await meter.finish()
