"""Rate limits and token budgets (requests/minute, tokens/minute, tokens/day) and concurrency slots.

A plan's limits are counted per user (subject `user:<id>`), whatever key or page the request came
through, so more keys or a rotation never multiply the plan. A key with its own overrides also has
its own windows (`key:<id>`), whose limits can only be lower than the plan's.

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


_LIMIT_FIELDS = ("requests_per_minute", "tokens_per_minute", "tokens_per_day")


def plan_limits(plan) -> Limits:
    """The plan's limits, counted per user. A plan is required: there is no "no plan, no limits"."""
    if plan is None:
        raise ValueError("limits need a plan; a user without one is under the default plan")
    return Limits(*(getattr(plan, name) for name in _LIMIT_FIELDS))


def key_limits(api_key, plan) -> Limits | None:
    """The key's own windows, or None when it sets no override. An override can only lower the
    plan's limit (a larger value is capped at the plan's); unset fields are not counted per key."""
    if api_key is None:
        return None
    overrides = [getattr(api_key, name, None) for name in _LIMIT_FIELDS]
    if all(value is None for value in overrides):
        return None
    base = plan_limits(plan)
    capped = [
        None if value is None else min(value, getattr(base, name))
        for name, value in zip(_LIMIT_FIELDS, overrides, strict=True)
    ]
    return Limits(*capped)


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
    limit: str = ""  # what ran out: "requests" or "tokens" (a per-minute window or the daily budget)


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

    def refuse(code: str, message: str, retry_after: int, limit: str) -> Decision:
        return Decision(False, code, message, retry_after, {**headers, "Retry-After": str(retry_after)}, limit)

    if limits.tokens_per_day is not None and usage.tokens_today >= limits.tokens_per_day:
        return refuse(
            "insufficient_quota",
            f"You exceeded your daily token budget ({limits.tokens_per_day} tokens). It renews at 00:00 UTC.",
            day_left,
            "tokens",
        )
    if limits.requests_per_minute is not None and usage.requests_this_minute > limits.requests_per_minute:
        return refuse(
            "rate_limit_exceeded",
            f"Rate limit reached: {limits.requests_per_minute} requests per minute. Retry in {minute_left}s.",
            minute_left,
            "requests",
        )
    if limits.tokens_per_minute is not None and usage.tokens_this_minute >= limits.tokens_per_minute:
        return refuse(
            "rate_limit_exceeded",
            f"Rate limit reached: {limits.tokens_per_minute} tokens per minute. Retry in {minute_left}s.",
            minute_left,
            "tokens",
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
        self._slots: dict[str, int] = {}  # concurrency slot key -> requests running

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

    async def acquire_slot(self, key: str, limit: int) -> bool:
        with self._lock:
            running = self._slots.get(key, 0)
            if running >= limit:
                return False
            self._slots[key] = running + 1
            return True

    async def release_slot(self, key: str) -> None:
        with self._lock:
            running = self._slots.get(key, 0) - 1
            if running > 0:
                self._slots[key] = running
            else:
                self._slots.pop(key, None)

    def running(self, key: str) -> int:
        with self._lock:
            return self._slots.get(key, 0)

    def reset(self) -> None:
        with self._lock:
            self._values.clear()
            self._slots.clear()


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
# KEYS: the slot counter. ARGV: limit, safety TTL. Takes a slot if one is free.
_ACQUIRE_SCRIPT = """
local running = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
if running > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  return 0
end
return 1
"""
_RELEASE_SCRIPT = """
local running = redis.call('DECR', KEYS[1])
if running <= 0 then redis.call('DEL', KEYS[1]) end
return running
"""
# A worker that dies holding slots leaks them; they expire after this long without a new request.
SLOT_TTL_SECONDS = 3600


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

    async def acquire_slot(self, key: str, limit: int) -> LocalCounters | RedisCounters | None:
        """Take a slot; returns the store that holds it (release there), or None when all are taken."""
        if self._available():
            try:
                taken = await self._client().eval(_ACQUIRE_SCRIPT, 1, key, limit, SLOT_TTL_SECONDS)
                return self if int(taken) else None
            except Exception as exc:
                self._mark_down(exc)
        return self.fallback if await self.fallback.acquire_slot(key, limit) else None

    async def release_slot(self, key: str) -> None:
        try:
            await self._client().eval(_RELEASE_SCRIPT, 1, key)
        except Exception as exc:  # it expires on its own (SLOT_TTL_SECONDS)
            self._mark_down(exc)


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


@dataclass
class Slot:
    """A concurrency slot held by one request; released exactly once."""

    key: str
    store: LocalCounters | RedisCounters
    released: bool = False

    async def release(self) -> None:
        if self.released:
            return
        self.released = True
        await self.store.release_slot(self.key)


def _slot_key(subject: str) -> str:
    return f"{settings.CACHE_KEY_PREFIX}:conc:{subject}"


async def acquire_slot(*, subject: str, limit: int) -> Slot | None:
    """One of `limit` concurrent-request slots of `subject`, or None when all are taken."""
    key = _slot_key(subject)
    store = counters()
    if isinstance(store, RedisCounters):
        holder = await store.acquire_slot(key, limit)
        return None if holder is None else Slot(key, holder)
    return Slot(key, store) if await store.acquire_slot(key, limit) else None
