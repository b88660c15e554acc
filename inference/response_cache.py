"""Cache of deterministic completions: temperature 0 or a fixed seed, identical inputs.

Scoped per user: one user's prompts and answers are never served to another (the key includes
the user's id). Shared through the default cache (Redis when REDIS_URL is set). Operators turn it
off with RESPONSE_CACHE_SECONDS=0.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

from django.conf import settings
from django.core.cache import cache

from inference.engine.types import GenerationRequest


def is_cacheable(request: GenerationRequest) -> bool:
    """Deterministic and plain: answers with tool calls or logprobs (upstream extras) are not kept."""
    params = request.params
    if any(name != "user" for name in request.extra):
        return False
    return settings.RESPONSE_CACHE_SECONDS > 0 and (params.temperature == 0 or params.seed is not None)


def cache_key(*, user_id: int, model: str, request: GenerationRequest, n: int) -> str:
    payload = {
        "user": user_id,
        "model": model,
        "messages": request.messages,
        "prompt": request.prompt,
        "params": asdict(request.params),
        "n": n,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=list).encode()).hexdigest()
    return f"completion:{user_id}:{digest}"


async def lookup(key: str) -> dict | None:
    return await cache.aget(key)


async def store(key: str, *, choices: list[tuple[str, str]], prompt_tokens: int, completion_tokens: int) -> None:
    value = {"choices": choices, "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
    await cache.aset(key, value, settings.RESPONSE_CACHE_SECONDS)
