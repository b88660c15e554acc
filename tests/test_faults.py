"""Faults of the services the portal depends on (issue 10): Redis unreachable, in-process.

The database-down case needs a server whose database is gone from the start, so it runs as a real
server process: tests/e2e/test_faults.py.
"""

from __future__ import annotations

import socket

import pytest
from django.core.cache import cache

from tests.conftest import PASSWORD
from tests.inference.helpers import call


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def redis_down(settings):
    """The shared cache and the limit counters point at a Redis that is not there."""
    from usage import limits

    url = f"redis://127.0.0.1:{closed_port()}/0"
    settings.REDIS_URL = url
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "llmos-test",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2, "IGNORE_EXCEPTIONS": True},
        }
    }
    settings.DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = False
    limits.reset_counters()
    yield url
    limits.reset_counters()


def test_readyz_says_the_cache_is_down_but_keeps_serving(db, redis_down, settings):
    settings.DEFAULT_CHAT_MODEL = "not-registered"  # no model load in a unit test
    result = call("GET", "/readyz")
    body = result.json()
    assert body["checks"]["cache"] is False and body["checks"]["database"] is True
    assert "cache" in body["down"]


@pytest.mark.django_db
def test_readyz_reports_a_degraded_portal_as_ready(redis_down, monkeypatch):
    from inference import runtime

    async def ready() -> dict:
        return {"ready": True, "runner": "llama_cpp", "fallback": None}

    monkeypatch.setattr(runtime, "default_model_status", ready)
    result = call("GET", "/readyz")
    assert result.status == 200
    assert result.json() == {
        "status": "degraded",
        "checks": {"database": True, "cache": False, "default_model": True},
        "down": ["cache"],
        "default_model_runner": "llama_cpp",
    }


def test_v1_and_native_endpoints_keep_serving_without_redis(owner_key, redis_down):
    assert cache.get("anything") is None  # the cache is really gone: misses
    result = call("GET", "/v1/models", owner_key)
    assert result.status == 200, result.body
    assert result.headers.get("x-ratelimit-limit-requests")
    # A native endpoint: past auth and limits to validation (no model runs).
    result = call("POST", "/api/v1/generate", owner_key, {"prompt": 5})
    assert result.status == 400, result.body


def test_portal_api_and_pages_keep_serving_without_redis(client, owner, redis_down):
    response = client.post(
        "/api/token/", {"username": owner.username, "password": PASSWORD}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    access = response.json()["access"]
    assert client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {access}").status_code == 200
    assert client.get("/api/usage/", HTTP_AUTHORIZATION=f"Bearer {access}").status_code == 200
    client.force_login(owner)
    assert client.get("/console/usage/").status_code == 200
    assert client.get("/console/keys/").status_code == 200
