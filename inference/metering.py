"""Accounting for one inference request: limits before, usage and metrics after.

A RequestMeter follows a request from authentication to its last byte. `admit()` applies the
caller's rate limits; `finish()` (called exactly once, also for errors and dropped streams) queues
the usage row, adds the tokens to the caller's windows and updates the metrics.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from inference import limits, metrics
from inference.errors import ApiError
from inference.usage import UsageEvent, recorder


@dataclass
class RequestMeter:
    endpoint: str
    request_id: str = ""
    caller: object | None = None  # inference.services.Caller once authenticated
    model: str = ""
    streamed: bool = False
    cached: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    client_disconnected: bool = False
    rate_limit_headers: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    ttft_s: float | None = None
    finished: bool = False

    @property
    def limit_subject(self) -> str:
        api_key = self.caller.api_key
        return f"key:{api_key.pk}" if api_key is not None else f"user:{self.caller.user.pk}"

    async def admit(self) -> None:
        """Count the request against the caller's limits; raise a 429 ApiError when over."""
        caller_limits = limits.limits_for(self.caller.api_key, self.caller.plan)
        decision = await limits.check_request(subject=self.limit_subject, limits=caller_limits)
        self.rate_limit_headers = decision.headers
        if not decision.allowed:
            raise ApiError(
                decision.message,
                status=429,
                type="insufficient_quota" if decision.code == "insufficient_quota" else "requests",
                code=decision.code,
                headers=decision.headers,
            )

    def first_token(self) -> None:
        if self.ttft_s is None:
            self.ttft_s = time.perf_counter() - self.started

    async def finish(self, *, status: int, error_code: str = "") -> None:
        if self.finished:
            return
        self.finished = True
        latency_s = time.perf_counter() - self.started
        metrics.observe_request(
            endpoint=self.endpoint,
            model=self.model,
            status=status,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            latency_s=latency_s,
            ttft_s=self.ttft_s,
        )
        if self.caller is None:
            return  # unauthenticated: nobody to bill
        api_key = self.caller.api_key
        recorder().record(
            UsageEvent(
                user_id=self.caller.user.pk,
                api_key_id=api_key.pk if api_key is not None else None,
                model=self.model,
                endpoint=self.endpoint,
                status_code=status,
                prompt_tokens=self.prompt_tokens,
                completion_tokens=self.completion_tokens,
                latency_ms=int(latency_s * 1000),
                ttft_ms=None if self.ttft_s is None else int(self.ttft_s * 1000),
                error_code=error_code,
                cached=self.cached,
                streamed=self.streamed,
                client_disconnected=self.client_disconnected,
                request_id=self.request_id,
            )
        )
        if not self.cached:
            await limits.record_tokens(subject=self.limit_subject, tokens=self.prompt_tokens + self.completion_tokens)
