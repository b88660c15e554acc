"""Shared fixtures: an owner, a second user and an operator (staff), plus clients for each."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts import services
from accounts.models import User

PASSWORD = "correct-horse-battery-staple-42"


@pytest.fixture(autouse=True)
def _models_only_with_the_marker(request, monkeypatch):
    """Loading an in-process model takes seconds: only tests marked `model` may, so `make test-fast`
    (which deselects them) never does. An unmarked test that tries fails with this message."""
    if request.node.get_closest_marker("model") or request.node.get_closest_marker("e2e"):
        return
    from inference.engine.manager import ModelManager

    def guarded(self, spec):  # every in-process runner is built here (upstream deployments are not)
        raise AssertionError(f"{request.node.nodeid} loads the model {spec.name!r}: mark it @pytest.mark.model")

    monkeypatch.setattr(ModelManager, "_build_local", guarded)


@pytest.fixture(autouse=True)
def _clean_state(settings):
    """Rate-limit counters, cached keys and buffered usage must not leak between tests."""
    from accounts import ip_rules, throttle
    from inference import registry
    from usage import limits
    from usage.recorder import recorder

    settings.USAGE_BACKGROUND_WRITES = False  # tests flush usage rows on their own connection
    cache.clear()
    limits.reset_counters()
    throttle.local_counters.reset()
    ip_rules.process_rules.reset()
    registry.forget_cached_specs()
    recorder().discard()
    yield
    cache.clear()
    limits.reset_counters()
    recorder().discard()


def make_user(email: str, *, staff: bool = False) -> User:
    user = services.user_signup(email=email, password=PASSWORD, verified=True)
    if staff:
        user.is_staff = user.is_superuser = True
        user.save(update_fields=["is_staff", "is_superuser"])
    return user


@pytest.fixture
def owner(db) -> User:
    return make_user("owner@example.com")


@pytest.fixture
def other_user(db) -> User:
    return make_user("other@example.com")


@pytest.fixture
def operator(db) -> User:
    return make_user("operator@example.com", staff=True)


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def owner_api(owner) -> APIClient:
    api = APIClient()
    api.force_authenticate(owner)
    return api


@pytest.fixture
def owner_key(owner) -> str:
    _, raw_key = services.api_key_create(user=owner, name="owner key")
    return raw_key


@pytest.fixture
def broken_engine(monkeypatch):
    """Every way into the model raises an error nobody planned for."""
    from inference import services as inference_services
    from inference import tasks

    async def explode(*args, **kwargs):
        raise RuntimeError("unexpected failure deep down")

    monkeypatch.setattr(inference_services, "generation_start", explode)
    monkeypatch.setattr(inference_services, "embeddings_create", explode)
    monkeypatch.setattr(tasks, "generate", explode)
