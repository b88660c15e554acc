"""The lean ASGI handler for /v1's model endpoints (llmos_portal.api_handler): what it keeps of
Django's request cycle (host check, IP rules, HTTPS redirect, security headers, request id,
disconnects, connection hygiene) and that everything else still goes through Django."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.db import OperationalError, connection, transaction

from accounts import ip_rules
from inference import services
from llmos_portal import db
from llmos_portal.api_handler import ApiHandler
from tests.inference.helpers import asgi_scope, call
from usage.models import UsageRecord
from usage.recorder import recorder

pytestmark = pytest.mark.django_db


def _scope(path: str, *, method: str = "POST", host: bytes = b"testserver", headers=()) -> dict:
    return asgi_scope(path, method=method, host=host, headers=headers)


def _bearer(key: str) -> tuple[bytes, bytes]:
    return (b"authorization", f"Bearer {key}".encode())


def test_model_endpoints_are_served_by_the_lean_handler_and_the_rest_by_django():
    assert ApiHandler.serves("/v1/chat/completions") and ApiHandler.serves("/v1/models/some/model")
    assert not ApiHandler.serves("/v1/files") and not ApiHandler.serves("/v1/batches")
    assert not ApiHandler.serves("/") and not ApiHandler.serves("/api/v1/generate")

    seen = []

    async def django_app(scope, receive, send):
        seen.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def run(path: str) -> int:
        communicator = ApplicationCommunicator(ApiHandler(fallback=django_app), _scope(path, method="GET"))
        await communicator.send_input({"type": "http.request", "body": b""})
        start = await communicator.receive_output(10)
        await communicator.wait(10)
        return start["status"]

    for path in ("/v1/files", "/console/keys/", "/healthz"):
        assert async_to_sync(run)(path) == 204
    assert seen == ["/v1/files", "/console/keys/", "/healthz"]


def test_answers_carry_the_request_id_security_headers_and_a_content_length(owner_key):
    result = call("GET", "/v1/models", owner_key, **{"X-Request-Id": "trace-123"})
    assert result.status == 200
    assert result.headers["x-request-id"] == "trace-123"
    assert result.headers["x-content-type-options"] == "nosniff"
    assert result.headers["x-frame-options"] == "DENY"
    assert result.headers["referrer-policy"] == "same-origin"
    assert result.headers["content-length"] == str(len(result.body))
    assert result.headers["content-type"] == "application/json"


def test_an_invalid_request_id_is_replaced():
    result = call("GET", "/v1/models", None, **{"X-Request-Id": "bad id\twith spaces"})
    assert result.status == 401 and result.headers["x-request-id"].startswith("req_")


def _single(scope: dict, body: bytes = b"") -> tuple[int, dict, bytes]:
    async def run():
        communicator = ApplicationCommunicator(ApiHandler(fallback=None), scope)
        await communicator.send_input({"type": "http.request", "body": body})
        start = await communicator.receive_output(30)
        message = await communicator.receive_output(30)
        await communicator.wait(30)
        return start["status"], dict(start["headers"]), message["body"]

    return async_to_sync(run)()


def test_a_host_outside_allowed_hosts_gets_an_openai_400(settings):
    settings.ALLOWED_HOSTS = ["portal.example"]
    status, _, body = _single(_scope("/v1/models", method="GET", host=b"evil.example"))
    assert status == 400
    assert json.loads(body)["error"]["code"] == "invalid_host"


def test_plain_http_is_redirected_when_https_is_required(settings, owner_key):
    settings.SECURE_SSL_REDIRECT = True
    status, headers, _ = _single(_scope("/v1/models", method="GET", headers=[_bearer(owner_key)]))
    assert status == 301 and headers[b"Location"] == b"https://testserver/v1/models"


def test_behind_a_tls_proxy_the_request_is_served_with_hsts(settings, owner_key):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    forwarded = (b"x-forwarded-proto", b"https")
    status, headers, _ = _single(_scope("/v1/models", method="GET", headers=[_bearer(owner_key), forwarded]))
    assert status == 200 and headers[b"Strict-Transport-Security"].startswith(b"max-age=3600")


def test_an_unreadable_rule_table_is_a_503_not_a_crash(monkeypatch, owner_key):
    def database_down():
        raise OperationalError("connection refused")

    monkeypatch.setattr(ip_rules.process_rules, "current", lambda: None)
    monkeypatch.setattr(ip_rules, "current_rules", database_down)
    result = call("GET", "/v1/models", owner_key)
    assert result.status == 503 and result.json()["error"]["code"] == "service_unavailable"
    assert "Retry-After".lower() in result.headers


def test_a_body_over_the_size_limit_is_a_400(settings, owner_key):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    result = call("POST", "/v1/chat/completions", owner_key, {"model": "m", "messages": [], "pad": "x" * 4096})
    assert result.status == 400 and result.json()["error"]["code"] == "request_too_large"


def test_a_client_that_disconnects_cancels_the_view_and_is_billed(owner_key, monkeypatch):
    started = asyncio.Event()

    async def forever(**kwargs):
        started.set()
        await asyncio.sleep(3600)

    async def any_model(name, *, caller, kind):
        from inference.engine.types import ModelSpec

        return ModelSpec(name=name, kind=kind, backend="sentence")

    monkeypatch.setattr(services, "embeddings_create", forever)
    monkeypatch.setattr(services, "model_for_caller", any_model)
    body = json.dumps({"model": "all-MiniLM-L6-v2", "input": "x"}).encode()

    async def run():
        scope = _scope("/v1/embeddings", headers=[_bearer(owner_key), (b"content-type", b"application/json")])
        communicator = ApplicationCommunicator(ApiHandler(fallback=None), scope)
        await communicator.send_input({"type": "http.request", "body": body})
        await asyncio.wait_for(started.wait(), 30)
        await communicator.send_input({"type": "http.disconnect"})
        await communicator.wait(30)  # the handler returns: the view was cancelled, nothing sent
        assert await communicator.receive_nothing()

    async_to_sync(run)()
    recorder().flush()
    (row,) = UsageRecord.objects.all()
    assert (row.status_code, row.error_code, row.client_disconnected) == (200, "client_disconnected", True)


@pytest.mark.django_db(transaction=True)
def test_stale_connections_are_closed_around_database_calls_but_never_inside_a_transaction(monkeypatch):
    closed = []
    connection.ensure_connection()
    monkeypatch.setattr(connection, "errors_occurred", True)
    monkeypatch.setattr(connection, "is_usable", lambda: False)
    monkeypatch.setattr(connection, "close", lambda: closed.append(True))
    with transaction.atomic():
        db.close_stale_connections()
    assert closed == []  # a transaction's connection is left alone
    db.close_stale_connections()
    assert closed == [True]


def test_an_unexpected_error_outside_the_views_is_an_openai_500(monkeypatch, owner_key):
    async def broken(request):
        raise RuntimeError("bug")

    monkeypatch.setattr("llmos_portal.api_handler.aip_refusal", broken)
    result = call("GET", "/v1/models", owner_key)
    assert result.status == 500 and result.json()["error"]["type"] == "server_error"
    assert result.headers["x-request-id"]
