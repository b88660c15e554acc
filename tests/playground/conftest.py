"""Playground fixtures: committed users with sessions (the consumer reads the database from other
threads, so these tests are transactional), the registry's models and a roomy plan."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable

import pytest
from channels.testing import WebsocketCommunicator
from django.apps import apps as django_apps
from django.conf import settings
from django.test import Client

from accounts.models import Plan, User
from inference.models import RegisteredModel
from llmos_portal.asgi import application
from tests.conftest import make_user

CHAT_MODEL = "SmolLM2-135M-Instruct"
EMBED_MODEL = "all-MiniLM-L6-v2"
ORIGIN = "http://localhost"


def seed_registry() -> None:
    """Transactional tests flush the database, the migrations' model rows included: put them back."""
    seed = importlib.import_module("inference.migrations.0002_seed_embedded_models")
    for row in seed.EMBEDDED:
        RegisteredModel.objects.get_or_create(name=row["name"], defaults=row)
    switch = importlib.import_module("inference.migrations.0005_llama_cpp_backend")
    switch.serve_embedded_chat_with_llama_cpp(django_apps, None)


@pytest.fixture
def roomy_plan(transactional_db) -> Plan:
    seed_registry()
    plan, _ = Plan.objects.get_or_create(
        name="playground-tests",
        defaults={
            "requests_per_minute": 1000,
            "tokens_per_minute": 1_000_000,
            "tokens_per_day": 10_000_000,
            "max_tokens_per_request": 1024,
        },
    )
    return plan


def _user(email: str, plan: Plan) -> User:
    user = make_user(email)
    user.plan = plan
    user.save(update_fields=["plan"])
    return user


@pytest.fixture
def alice(roomy_plan) -> User:
    return _user("alice@example.com", roomy_plan)


@pytest.fixture
def bob(roomy_plan) -> User:
    return _user("bob@example.com", roomy_plan)


def session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def communicator(*, cookie: str | None = None, origin: str | None = ORIGIN) -> WebsocketCommunicator:
    headers = [(b"host", b"localhost")]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if cookie is not None:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return WebsocketCommunicator(application, "/ws/playground/", headers=headers)


@pytest.fixture
def alice_cookie(alice) -> str:
    return session_cookie(alice)


@pytest.fixture
def bob_cookie(bob) -> str:
    return session_cookie(bob)


@pytest.fixture
async def open_socket() -> AsyncIterator[Callable]:
    """open_socket(cookie) -> a connected communicator past its `ready` event; closed at the end."""
    opened: list[WebsocketCommunicator] = []

    async def open_(cookie: str) -> WebsocketCommunicator:
        ws = communicator(cookie=cookie)
        connected, _ = await ws.connect(timeout=5)
        assert connected
        assert (await ws.receive_json_from(timeout=5))["type"] == "ready"
        opened.append(ws)
        return ws

    yield open_
    for ws in opened:
        try:
            await ws.disconnect(timeout=15)
        except Exception:  # already closed by the test
            pass
