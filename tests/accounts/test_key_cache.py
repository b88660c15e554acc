"""The cached API-key entry: only the fields auth needs, dropped whenever the key, its owner or
their plan changes."""

from __future__ import annotations

import pickle

import pytest
from django.core.cache import cache

from accounts import keys, services
from accounts.exceptions import InactiveAccount, RevokedApiKey
from accounts.models import ApiKey, Plan
from tests.inference.helpers import call


def cached_entry(raw_key: str):
    return cache.get(f"apikey:{keys.digest(raw_key)}")


def authenticate(raw_key: str) -> ApiKey:
    return services.api_key_authenticate(raw_key=raw_key, client_ip="127.0.0.1")


def test_the_cached_entry_holds_plain_values_and_no_password_hash(owner, owner_key):
    authenticate(owner_key)
    entry = cached_entry(owner_key)
    assert isinstance(entry, dict) and set(entry) == {"key", "user", "plan", "organization"}
    assert "password" not in entry["user"] and "digest" not in entry["key"]
    dumped = pickle.dumps(entry)
    assert owner.password.encode() not in dumped and b"accounts.models" not in dumped


def test_a_cached_key_still_authenticates_with_its_plan(owner, owner_key):
    authenticate(owner_key)
    api_key = authenticate(owner_key)  # from the cache
    assert api_key.user.pk == owner.pk and api_key.user.plan.name == owner.plan.name


def test_deactivating_the_owner_rejects_a_cached_key_at_once(owner, owner_key):
    authenticate(owner_key)
    owner.is_active = False
    owner.save()
    with pytest.raises(InactiveAccount):
        authenticate(owner_key)


def test_a_login_does_not_drop_the_cached_entry(owner, owner_key):
    authenticate(owner_key)
    owner.save(update_fields=["last_login"])
    assert cached_entry(owner_key) is not None


def test_moving_the_owner_to_another_plan_applies_at_once(owner, owner_key):
    assert call("GET", "/v1/models", owner_key).headers["x-ratelimit-limit-requests"] == "20"
    owner.plan = Plan.objects.create(name="Tiny", requests_per_minute=3)
    owner.save()
    assert call("GET", "/v1/models", owner_key).headers["x-ratelimit-limit-requests"] == "3"


def test_editing_the_plan_applies_at_once(owner, owner_key):
    authenticate(owner_key)
    plan = Plan.objects.get(pk=owner.plan_id)
    plan.requests_per_minute = 4
    plan.save()
    assert cached_entry(owner_key) is None
    assert authenticate(owner_key).user.plan.requests_per_minute == 4


def test_revoking_or_editing_a_key_drops_its_entry(owner, owner_key):
    authenticate(owner_key)
    api_key = ApiKey.objects.get(user=owner)
    api_key.allowed_models = ["other-model"]
    api_key.save()  # as the admin does
    assert cached_entry(owner_key) is None
    authenticate(owner_key)
    services.api_key_revoke(api_key=api_key)
    with pytest.raises(RevokedApiKey):
        authenticate(owner_key)
