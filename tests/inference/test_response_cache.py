"""The response cache is scoped per user: another user never gets my cached answer."""

from __future__ import annotations

import pytest

from accounts import services
from inference import response_cache
from inference.engine.types import GenerationRequest, SamplingParams
from tests.inference.helpers import call
from usage.models import UsageRecord
from usage.recorder import recorder

CHAT_MODEL = "SmolLM2-135M-Instruct"


def test_cache_keys_differ_per_user():
    request = GenerationRequest(params=SamplingParams(temperature=0), prompt="Hi")
    mine = response_cache.cache_key(user_id=1, model=CHAT_MODEL, request=request, n=1)
    theirs = response_cache.cache_key(user_id=2, model=CHAT_MODEL, request=request, n=1)
    assert mine != theirs
    assert mine == response_cache.cache_key(user_id=1, model=CHAT_MODEL, request=request, n=1)


@pytest.mark.model
def test_another_user_does_not_get_my_cached_answer(owner, owner_key, other_user):
    _, other_key = services.api_key_create(user=other_user, name="theirs")
    body = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "My secret is 42."}], "max_tokens": 4}
    body["temperature"] = 0
    assert call("POST", "/v1/chat/completions", owner_key, body).status == 200
    assert call("POST", "/v1/chat/completions", other_key, body).status == 200
    assert call("POST", "/v1/chat/completions", owner_key, body).status == 200
    recorder().flush()
    rows = [(row.user_id, row.cached) for row in UsageRecord.objects.order_by("id")]
    assert rows == [(owner.pk, False), (other_user.pk, False), (owner.pk, True)]
