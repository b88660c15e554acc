"""Per-key rate limits and token budgets: requests/minute, tokens/minute, tokens/day.

Counters are fixed windows (the current minute, the current UTC day). With REDIS_URL they live in
Redis, so every worker process shares them, and a check is one round trip (a Lua script). Without
Redis they live in this process.

If Redis is unreachable, limiting falls back to this process's own counters (and logs it) rather
than refusing all traffic or letting it through unlimited; it retries Redis after a short pause.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from dataclasses import dataclass

from django.conf import settings

logger = logging.getLogger(__name__)

MINUTE = 60
DAY = 86_400
REDIS_RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class Limits:
    requests_per_minute: int | None
    tokens_per_minute: int | None
    tokens_per_day: int | None


def limits_for(api_key, plan) -> Limits:
    """The key's own limits where set, else its owner's plan's; None means unlimited."""

    def pick(field: str) -> int | None:
        value = getattr(api_key, field, None) if api_key is not None else None
        if value is None and plan is not None:
            value = getattr(plan, field)
        return value

    return Limits(pick("requests_per_minute"), pick("tokens_per_minute"), pick("tokens_per_day"))


@dataclass(frozen=True)
class Usage:
    """Counters in the current windows, including the request being checked."""

    requests_this_minute: int
    tokens_this_minute: int
    tokens_today: int


@dataclass(frozen=True)
class Decision:
    allowed: bool
    code: str | None  # rate_limit_exceeded | insufficient_quota
    message: str
    retry_after: int
    headers: dict[str, str]


def _seconds_left(now: float, period: int) -> int:
    return max(1, int(period - (now % period)))


def _fmt(seconds: int) -> str:
    return f"{seconds}s"


def decide(limits: Limits, usage: Usage, now: float) -> Decision:
    """Pure: from the limits and the counters, allow or refuse, and the x-ratelimit-* headers."""
    minute_left = _seconds_left(now, MINUTE)
    day_left = _seconds_left(now, DAY)
    headers: dict[str, str] = {}
    if limits.requests_per_minute is not None:
        headers["x-ratelimit-limit-requests"] = str(limits.requests_per_minute)
        headers["x-ratelimit-remaining-requests"] = str(max(0, limits.requests_per_minute - usage.requests_this_minute))
        headers["x-ratelimit-reset-requests"] = _fmt(minute_left)
    if limits.tokens_per_minute is not None:
        headers["x-ratelimit-limit-tokens"] = str(limits.tokens_per_minute)
        headers["x-ratelimit-remaining-tokens"] = str(max(0, limits.tokens_per_minute - usage.tokens_this_minute))
        headers["x-ratelimit-reset-tokens"] = _fmt(minute_left)

    def refuse(code: str, message: str, retry_after: int) -> Decision:
        return Decision(False, code, message, retry_after, {**headers, "Retry-After": str(retry_after)})

    if limits.tokens_per_day is not None and usage.tokens_today >= limits.tokens_per_day:
        return refuse(
            "insufficient_quota",
            f"You exceeded your daily token budget ({limits.tokens_per_day} tokens). It renews at 00:00 UTC.",
            day_left,
        )
    if limits.requests_per_minute is not None and usage.requests_this_minute > limits.requests_per_minute:
        return refuse(
            "rate_limit_exceeded",
            f"Rate limit reached: {limits.requests_per_minute} requests per minute. Retry in {minute_left}s.",
            minute_left,
        )
    if limits.tokens_per_minute is not None and usage.tokens_this_minute >= limits.tokens_per_minute:
        return refuse(
            "rate_limit_exceeded",
            f"Rate limit reached: {limits.tokens_per_minute} tokens per minute. Retry in {minute_left}s.",
            minute_left,
        )
    return Decision(True, None, "", 0, headers)


def _window_keys(subject: str, now: float) -> tuple[str, str, str]:
    minute, day = int(now // MINUTE), int(now // DAY)
    prefix = f"{settings.CACHE_KEY_PREFIX}:rl:{subject}"
    return f"{prefix}:req:{minute}", f"{prefix}:tok:{minute}", f"{prefix}:day:{day}"


class LocalCounters:
    """This process's counters (the default, and the fallback when Redis is unreachable)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, tuple[int, float]] = {}  # key -> (value, expires at)

    def _get(self, key: str, now: float) -> int:
        value, expires = self._values.get(key, (0, 0.0))
        return value if expires > now else 0

    def _add(self, key: str, amount: int, ttl: int, now: float) -> int:
        value = self._get(key, now) + amount
        self._values[key] = (value, now + ttl)
        return value

    def _prune(self, now: float) -> None:
        if len(self._values) > 10_000:
            self._values = {key: item for key, item in self._values.items() if item[1] > now}

    async def hit(self, subject: str, now: float) -> Usage:
        request_key, token_key, day_key = _window_keys(subject, now)
        with self._lock:
            self._prune(now)
            requests = self._add(request_key, 1, MINUTE, now)
            return Usage(requests, self._get(token_key, now), self._get(day_key, now))

    async def add_tokens(self, subject: str, tokens: int, now: float) -> None:
        _, token_key, day_key = _window_keys(subject, now)
        with self._lock:
            self._add(token_key, tokens, MINUTE, now)
            self._add(day_key, tokens, DAY, now)

    def reset(self) -> None:
        with self._lock:
            self._values.clear()


# KEYS: requests-this-minute, tokens-this-minute, tokens-today. Counts the request, reads the rest.
_HIT_SCRIPT = """
local requests = redis.call('INCR', KEYS[1])
if requests == 1 then redis.call('EXPIRE', KEYS[1], 120) end
local tokens = tonumber(redis.call('GET', KEYS[2]) or '0')
local today = tonumber(redis.call('GET', KEYS[3]) or '0')
return {requests, tokens, today}
"""
_ADD_SCRIPT = """
redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], 120)
redis.call('INCRBY', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], 172800)
return 1
"""


class RedisCounters:
    """Counters shared by every worker, in Redis; falls back to LocalCounters while it is down."""

    def __init__(self, url: str, fallback: LocalCounters) -> None:
        self.url = url
        self.fallback = fallback
        self._clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # one per event loop
        self._down_until = 0.0

    def _client(self):
        import redis.asyncio as aioredis

        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = aioredis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=0.5)
            self._clients[loop] = client
        return client

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _mark_down(self, exc: Exception) -> None:
        if self._available():
            logger.warning("Redis unreachable for rate limits (%s); using per-process counters", exc)
        self._down_until = time.monotonic() + REDIS_RETRY_SECONDS

    async def hit(self, subject: str, now: float) -> Usage:
        if self._available():
            try:
                values = await self._client().eval(_HIT_SCRIPT, 3, *_window_keys(subject, now))
                return Usage(*(int(value) for value in values))
            except Exception as exc:
                self._mark_down(exc)
        return await self.fallback.hit(subject, now)

    async def add_tokens(self, subject: str, tokens: int, now: float) -> None:
        _, token_key, day_key = _window_keys(subject, now)
        if self._available():
            try:
                await self._client().eval(_ADD_SCRIPT, 2, token_key, day_key, tokens)
                return
            except Exception as exc:
                self._mark_down(exc)
        await self.fallback.add_tokens(subject, tokens, now)


_counters: LocalCounters | RedisCounters | None = None
_counters_lock = threading.Lock()


def counters() -> LocalCounters | RedisCounters:
    global _counters
    with _counters_lock:
        if _counters is None:
            local = LocalCounters()
            _counters = RedisCounters(settings.REDIS_URL, local) if settings.REDIS_URL else local
        return _counters


def reset_counters() -> None:
    """Forget the process's counters object (tests switch settings between runs)."""
    global _counters
    with _counters_lock:
        _counters = None


async def check_request(*, subject: str, limits: Limits) -> Decision:
    """Count one request against the subject's windows (an API key, or a user in the playground)."""
    now = time.time()
    usage = await counters().hit(subject, now)
    return decide(limits, usage, now)


async def record_tokens(*, subject: str, tokens: int) -> None:
    if tokens > 0:
        await counters().add_tokens(subject, tokens, time.time())
