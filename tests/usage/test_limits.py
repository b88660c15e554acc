"""Rate limits and budgets: each trips with the right status, code and headers."""

from __future__ import annotations

import pytest
from django.test import override_settings

from accounts import services
from accounts.models import ApiKey
from tests.inference.helpers import call
from usage import limits
from usage.limits import Limits, Usage, decide

CHAT = {"model": "SmolLM2-135M-Instruct", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3}


def set_plan(user, **values):
    for name, value in values.items():
        setattr(user.plan, name, value)
    user.plan.save()
    # Cached key rows carry their plan: drop them (not the whole cache, which on Redis would also
    # wipe the rate-limit windows a test is counting).
    services.api_key_cache_forget_for_users(user_ids=[user.pk])


def test_requests_per_minute_trips_with_429_headers_and_retry_after(owner, owner_key):
    set_plan(owner, requests_per_minute=2)
    for remaining in ("1", "0"):
        result = call("GET", "/v1/models", owner_key)
        assert result.status == 200 and result.headers["x-ratelimit-remaining-requests"] == remaining
    result = call("GET", "/v1/models", owner_key)
    assert result.status == 429
    error = result.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "requests"
    assert 1 <= int(result.headers["retry-after"]) <= 60
    assert result.headers["x-ratelimit-limit-requests"] == "2"
    assert result.headers["x-ratelimit-remaining-requests"] == "0"
    assert result.headers["x-ratelimit-reset-requests"].endswith("s")


@pytest.mark.model
def test_tokens_per_minute_trips_after_the_tokens_are_spent(owner, owner_key):
    set_plan(owner, tokens_per_minute=30)
    first = call("POST", "/v1/chat/completions", owner_key, CHAT)
    assert first.status == 200 and first.json()["usage"]["total_tokens"] >= 30
    assert first.headers["x-ratelimit-limit-tokens"] == "30"
    second = call("POST", "/v1/chat/completions", owner_key, CHAT)
    assert second.status == 429 and second.json()["error"]["code"] == "rate_limit_exceeded"
    assert second.headers["x-ratelimit-remaining-tokens"] == "0" and "retry-after" in second.headers


@pytest.mark.model
def test_daily_budget_trips_with_insufficient_quota(owner, owner_key):
    set_plan(owner, tokens_per_day=30)
    assert call("POST", "/v1/chat/completions", owner_key, CHAT).status == 200
    result = call("POST", "/v1/chat/completions", owner_key, CHAT)
    assert result.status == 429
    assert result.json()["error"]["code"] == "insufficient_quota"
    assert result.json()["error"]["type"] == "insufficient_quota"
    assert int(result.headers["retry-after"]) <= 86_400


def test_per_key_override_beats_the_plan(owner):
    set_plan(owner, requests_per_minute=100)
    _, strict_key = services.api_key_create(user=owner, name="strict")
    ApiKey.objects.filter(name="strict").update(requests_per_minute=1)
    assert call("GET", "/v1/models", strict_key).status == 200
    assert call("GET", "/v1/models", strict_key).status == 429


def test_plan_limits_count_per_user_not_per_key(owner, owner_key):
    set_plan(owner, requests_per_minute=1)
    _, second_key = services.api_key_create(user=owner, name="second")
    assert call("GET", "/v1/models", owner_key).status == 200
    result = call("GET", "/v1/models", second_key)  # a second key shares the user's window
    assert result.status == 429 and result.json()["error"]["code"] == "rate_limit_exceeded"


def test_rotating_a_key_does_not_reset_the_window(owner, owner_key):
    set_plan(owner, requests_per_minute=1)
    assert call("GET", "/v1/models", owner_key).status == 200
    _, rotated = services.api_key_rotate(api_key=ApiKey.objects.get(user=owner))
    assert call("GET", "/v1/models", rotated).status == 429


def test_another_users_traffic_does_not_count_against_mine(owner, owner_key, other_user):
    set_plan(owner, requests_per_minute=1)
    _, other_key = services.api_key_create(user=other_user, name="theirs")
    assert call("GET", "/v1/models", other_key).status == 200
    assert call("GET", "/v1/models", owner_key).status == 200


def test_a_key_override_cannot_raise_the_plan(owner):
    set_plan(owner, requests_per_minute=1)
    _, generous = services.api_key_create(user=owner, name="generous")
    ApiKey.objects.filter(name="generous").update(requests_per_minute=100)
    first = call("GET", "/v1/models", generous)
    assert first.status == 200 and first.headers["x-ratelimit-limit-requests"] == "1"
    assert call("GET", "/v1/models", generous).status == 429


def test_key_limits_are_capped_by_the_plan():
    plan = type("P", (), {"requests_per_minute": 10, "tokens_per_minute": 100, "tokens_per_day": 1000})()
    key = type("K", (), {"requests_per_minute": 50, "tokens_per_minute": 5, "tokens_per_day": None})()
    assert limits.key_limits(key, plan) == Limits(10, 5, None)
    assert limits.key_limits(None, plan) is None
    with pytest.raises(ValueError):
        limits.plan_limits(None)


def test_native_endpoints_share_the_limits(owner, owner_key):
    set_plan(owner, requests_per_minute=1)
    assert call("GET", "/v1/models", owner_key).status == 200
    result = call("POST", "/api/v1/classify", owner_key, {"text": "x", "labels": ["a", "b"]})
    assert result.status == 429 and "retry-after" in result.headers


@override_settings(REDIS_URL="redis://127.0.0.1:1/0")
def test_unreachable_redis_falls_back_to_per_process_limits(owner, owner_key, caplog):
    limits.reset_counters()
    set_plan(owner, requests_per_minute=2)
    statuses = [call("GET", "/v1/models", owner_key).status for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert isinstance(limits.counters(), limits.RedisCounters)
    assert "Redis unreachable" in caplog.text


@pytest.mark.parametrize(
    ("usage", "allowed", "code"),
    [
        (Usage(1, 0, 0), True, None),
        (Usage(11, 0, 0), False, "rate_limit_exceeded"),
        (Usage(1, 100, 0), False, "rate_limit_exceeded"),
        (Usage(1, 0, 1000), False, "insufficient_quota"),
        (Usage(11, 100, 1000), False, "insufficient_quota"),  # the budget wins: it lasts longest
    ],
)
def test_decide(usage, allowed, code):
    decision = decide(Limits(10, 100, 1000), usage, now=1_000_000.0)
    assert decision.allowed is allowed and decision.code == code
    assert set(decision.headers) >= {"x-ratelimit-limit-requests", "x-ratelimit-remaining-tokens"}


def test_unlimited_plan_sends_no_limit_headers():
    decision = decide(Limits(None, None, None), Usage(1_000, 10**9, 10**9), now=0.0)
    assert decision.allowed and decision.headers == {}


def test_a_429_says_whether_requests_or_tokens_ran_out(owner, owner_key):
    from asgiref.sync import async_to_sync

    set_plan(owner, tokens_per_minute=100, requests_per_minute=1000)
    async_to_sync(limits.record_tokens)(subject=f"user:{owner.pk}", tokens=150)
    result = call("GET", "/v1/models", owner_key)
    assert result.status == 429
    error = result.json()["error"]
    assert (
        error["type"] == "tokens" and error["code"] == "rate_limit_exceeded" and "tokens per minute" in error["message"]
    )
    assert result.headers["x-ratelimit-remaining-tokens"] == "0"
    assert int(result.headers["x-ratelimit-remaining-requests"]) > 0

    set_plan(owner, tokens_per_minute=10**6, requests_per_minute=1)
    result = call("GET", "/v1/models", owner_key)
    error = result.json()["error"]
    assert result.status == 429 and error["type"] == "requests" and "requests per minute" in error["message"]
    assert result.headers["x-ratelimit-remaining-requests"] == "0"
