"""Limits fail closed: a user without a plan is under the default plan; "Unlimited" is explicit;
plans cap prompt tokens per request and concurrent requests per key."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.core.cache import cache

from accounts import services
from accounts.caller import Caller
from accounts.models import Plan, User
from inference.services import sampling_params
from tests.conftest import PASSWORD
from tests.inference.helpers import call
from usage import limits
from usage.metering import LimitExceeded, metered

CHAT = {"model": "SmolLM2-135M-Instruct", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3}


def planless_user(email: str = "admin-made@example.com") -> User:
    """A user made outside signup (createsuperuser, the admin, the shell): no plan."""
    return User.objects.create_user(username=email, email=email, password=PASSWORD)


def test_a_user_without_a_plan_is_under_the_default_plan(db):
    user = planless_user()
    assert user.plan is None
    Plan.objects.filter(is_default=True).update(requests_per_minute=1)
    _, raw_key = services.api_key_create(user=user, name="k")
    first = call("GET", "/v1/models", raw_key)
    assert first.status == 200 and first.headers["x-ratelimit-limit-requests"] == "1"
    assert call("GET", "/v1/models", raw_key).status == 429


def test_a_user_without_a_plan_gets_the_default_max_tokens_cap(db):
    user = planless_user()
    Plan.objects.filter(is_default=True).update(max_tokens_per_request=7)
    _, raw_key = services.api_key_create(user=user, name="k")
    api_key = services.api_key_authenticate(raw_key=raw_key, client_ip="127.0.0.1")
    caller = Caller.for_key(api_key)
    assert sampling_params({"max_tokens": 10**9}, plan=caller.plan).max_tokens == 7


def test_a_user_without_a_plan_only_gets_the_default_plans_models(db):
    user = planless_user()
    Plan.objects.filter(is_default=True).update(allowed_models=["all-MiniLM-L6-v2"])
    _, raw_key = services.api_key_create(user=user, name="k")
    result = call("POST", "/v1/chat/completions", raw_key, CHAT)
    assert result.status == 403 and result.json()["error"]["code"] == "model_not_allowed"


def test_without_any_default_plan_the_built_in_limits_apply(db):
    Plan.objects.filter(is_default=True).update(is_default=False)
    user = planless_user()
    _, raw_key = services.api_key_create(user=user, name="k")
    result = call("GET", "/v1/models", raw_key)
    assert result.status == 200
    assert result.headers["x-ratelimit-limit-requests"] == str(Plan().requests_per_minute)


def test_an_unlimited_plan_is_seeded_and_is_not_the_default(db):
    unlimited = Plan.objects.get(name="Unlimited")
    assert not unlimited.is_default
    assert unlimited.requests_per_minute >= 2**31 - 1 and unlimited.max_concurrent_requests >= 2**31 - 1
    assert Plan.objects.get(is_default=True).name == "Free"


def test_operators_can_put_a_user_on_the_unlimited_plan(db):
    user = planless_user()
    user.plan = Plan.objects.get(name="Unlimited")
    user.save()
    _, raw_key = services.api_key_create(user=user, name="k")
    assert call("GET", "/v1/models", raw_key).headers["x-ratelimit-limit-requests"] == str(2**31 - 1)


# --- concurrency and prompt caps ----------------------------------------------------------------


def test_concurrent_requests_per_key_are_capped_and_slots_released_once(owner, owner_key):
    owner.plan.max_concurrent_requests = 1
    owner.plan.save()
    api_key = services.api_key_authenticate(raw_key=owner_key, client_ip="127.0.0.1")
    caller = Caller.for_key(api_key)

    async def scenario() -> list[str]:
        seen = []
        async with metered("test", caller=caller) as first:
            await first.admit()
            try:
                async with metered("test", caller=caller) as second:
                    await second.admit()
            except LimitExceeded as exc:
                seen.append(exc.code)
            await first.finish()
            await first.finish()  # twice: the slot is given back once
        async with metered("test", caller=caller) as third:
            await third.admit()
            seen.append("admitted")
        return seen

    assert async_to_sync(scenario)() == ["concurrency_limit_exceeded", "admitted"]
    store = limits.counters()
    if isinstance(store, limits.LocalCounters):
        assert store.running(limits._slot_key(f"key:{api_key.pk}")) == 0


def test_v1_answers_concurrency_refusals_with_an_openai_429(owner, owner_key):
    owner.plan.max_concurrent_requests = 1
    owner.plan.save()
    cache.clear()
    api_key = services.api_key_authenticate(raw_key=owner_key, client_ip="127.0.0.1")

    async def hold_then_call():
        slot = await limits.acquire_slot(subject=f"key:{api_key.pk}", limit=1)
        assert slot is not None
        try:
            from django.test import AsyncClient

            response = await AsyncClient().get("/v1/models", headers={"Authorization": f"Bearer {owner_key}"})
        finally:
            await slot.release()
        return response

    response = async_to_sync(hold_then_call)()
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "concurrency_limit_exceeded" and error["type"] == "requests"
    assert response["Retry-After"]
    assert call("GET", "/v1/models", owner_key).status == 200  # released: the next one runs


def test_a_prompt_over_the_plans_cap_is_refused(owner):
    owner.plan.max_prompt_tokens_per_request = 10
    caller = Caller.for_user(owner)

    async def scenario():
        async with metered("test", caller=caller) as meter:
            meter.check_prompt_tokens(10)
            meter.check_prompt_tokens(11)

    with pytest.raises(LimitExceeded) as info:
        async_to_sync(scenario)()
    assert info.value.code == "prompt_too_long" and info.value.status == 400


@pytest.mark.model
def test_v1_refuses_a_prompt_over_the_plans_cap_with_a_400(owner, owner_key):
    owner.plan.max_prompt_tokens_per_request = 20
    owner.plan.save()
    long_prompt = {**CHAT, "messages": [{"role": "user", "content": "word " * 200}]}
    result = call("POST", "/v1/chat/completions", owner_key, long_prompt)
    assert result.status == 400
    error = result.json()["error"]
    assert error["code"] == "prompt_too_long" and error["type"] == "invalid_request_error"
