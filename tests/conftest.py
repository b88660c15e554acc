"""Shared fixtures: an owner, a second user and an operator (staff), plus clients for each."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts import services
from accounts.models import User

PASSWORD = "correct-horse-battery-staple-42"


@pytest.fixture(autouse=True)
def _clean_cache():
    """Rate-limit counters and cached keys must not leak between tests (Redis is shared)."""
    cache.clear()
    yield
    cache.clear()


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
