"""Secrets and label hygiene (issue 10): upstream URLs and keys are never shown back or logged,
and Prometheus labels only name models that exist."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import pytest

from inference.engine.http1 import Timeouts
from inference.engine.types import ModelSpec, UpstreamError
from inference.engine.upstream import UpstreamEmbedder, UpstreamTextGenerator
from inference.errors import from_engine_error
from inference.models import RegisteredModel
from tests.engine.scripted_server import Request, ScriptedServer, and_close, reply
from tests.inference.helpers import call

SECRET_URL = "https://admin:hunter2-secret@gpu.internal:8443/v1"
SECRET_KEY = "sk-upstream-very-secret-123"
SPEC = ModelSpec(
    name="remote",
    kind="chat",
    backend="upstream",
    upstream_url=SECRET_URL,
    upstream_api_key=SECRET_KEY,
    upstream_model="llama",
)


async def _never(request: Request) -> bytes:
    await asyncio.sleep(5)
    return b""


@pytest.mark.parametrize(
    "respond",
    [
        None,  # nothing listens: connection refused
        _never,  # a read timeout
        lambda request: and_close(b"garbage\r\n\r\n"),  # not HTTP
    ],
)
async def test_upstream_failures_do_not_echo_the_url(respond):
    async with ScriptedServer(respond or (lambda request: None)) as server:
        port = server.port
        url = f"http://admin:hunter2-secret@127.0.0.1:{port}/v1"
        if respond is None:
            await server.__aexit__()  # nothing listens on the port from now on
        failing = replace(SPEC, upstream_url=url)
        timeout = Timeouts.each(0.2)
        with pytest.raises(UpstreamError) as raised:
            await UpstreamEmbedder(failing, timeout=timeout).embed(["hi"])
        with pytest.raises(UpstreamError) as raised_stream:
            async for _ in UpstreamTextGenerator(failing, timeout=timeout).stream(_request()):
                pass
    for error in (raised.value, raised_stream.value):
        body = str(from_engine_error(error).body())
        for secret in ("hunter2", "127.0.0.1", str(port), SECRET_KEY):
            assert secret not in str(error) and secret not in body


def _request():
    from inference.engine.types import GenerationRequest, SamplingParams

    return GenerationRequest(params=SamplingParams(max_tokens=2), messages=({"role": "user", "content": "hi"},))


async def test_successful_upstream_calls_log_neither_the_url_nor_the_key(caplog):
    answer = {"choices": [{"index": 0, "message": {"content": "ok"}, "finish_reason": "stop"}]}
    async with ScriptedServer(lambda request: reply(200, answer)) as server:
        generator = UpstreamTextGenerator(replace(SPEC, upstream_url=server.url(userinfo="admin:hunter2-secret@")))
        with caplog.at_level(logging.DEBUG):
            text, _ = await generator.generate(replace(_request(), stream=False))
    assert text == "ok"
    assert "hunter2" not in caplog.text and SECRET_KEY not in caplog.text
    assert server.requests[-1].headers["authorization"] == f"Bearer {SECRET_KEY}"


def test_engine_error_messages_lose_any_url():
    error = from_engine_error(UpstreamError(f"upstream answered 500: see {SECRET_URL}/status", status=502))
    assert "hunter2" not in error.message and "<upstream>" in error.message


def test_model_spec_repr_hides_the_upstream_url_and_key():
    assert "hunter2" not in repr(SPEC) and SECRET_KEY not in repr(SPEC)


# --- the admin: the upstream key is write-only ----------------------------------------------------


@pytest.fixture
def remote_model(db) -> RegisteredModel:
    return RegisteredModel.objects.create(
        name="remote",
        kind="chat",
        backend="upstream",
        upstream_url="http://gpu.test/v1",
        upstream_api_key=SECRET_KEY,
        upstream_model="llama",
    )


def _change_form(remote_model: RegisteredModel, **changes) -> dict:
    data = {
        "name": remote_model.name,
        "kind": remote_model.kind,
        "backend": remote_model.backend,
        "source": "",
        "upstream_url": remote_model.upstream_url,
        "upstream_api_key": "",
        "upstream_model": remote_model.upstream_model,
        "context_length": remote_model.context_length,
        "enabled": "on",
        "owned_by": remote_model.owned_by,
        "description": "",
        "fallbacks": "",
        # the Deployments inline's management form: no deployment rows
        "deployments-TOTAL_FORMS": "0",
        "deployments-INITIAL_FORMS": "0",
        "deployments-MIN_NUM_FORMS": "0",
        "deployments-MAX_NUM_FORMS": "1000",
    }
    data.update(changes)
    return data


def test_admin_never_renders_the_saved_upstream_key(client, operator, remote_model):
    client.force_login(operator)
    page = client.get(f"/admin/inference/registeredmodel/{remote_model.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert SECRET_KEY not in html
    assert "set (unchanged" in html


def test_admin_keeps_the_key_when_left_blank_and_replaces_or_clears_it(client, operator, remote_model, caplog):
    client.force_login(operator)
    url = f"/admin/inference/registeredmodel/{remote_model.pk}/change/"
    with caplog.at_level(logging.DEBUG):
        response = client.post(url, _change_form(remote_model, description="renamed"))
    assert response.status_code == 302, response.content[:2000]
    remote_model.refresh_from_db()
    assert remote_model.upstream_api_key == SECRET_KEY and remote_model.description == "renamed"
    assert SECRET_KEY not in caplog.text

    client.post(url, _change_form(remote_model, upstream_api_key="sk-new-key"))
    remote_model.refresh_from_db()
    assert remote_model.upstream_api_key == "sk-new-key"

    client.post(url, _change_form(remote_model, clear_upstream_api_key="on"))
    remote_model.refresh_from_db()
    assert remote_model.upstream_api_key == ""

    from django.contrib.admin.models import LogEntry

    assert all("sk-" not in entry.change_message for entry in LogEntry.objects.all())


# --- metrics: only names that exist become labels ------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"model": "made-up-model-xyz", "messages": [{"role": "user", "content": "hi"}]}),
        ("/v1/completions", {"model": "made-up-model-xyz", "prompt": "hi"}),
        ("/v1/embeddings", {"model": "made-up-model-xyz", "input": "hi"}),
        ("/api/v1/generate", {"model": "made-up-model-xyz", "prompt": "hi"}),
        ("/api/v1/ask", {"model": "made-up-model-xyz", "question": "hi"}),
        ("/api/v1/classify", {"model": "made-up-model-xyz", "text": "hi", "labels": ["a", "b"]}),
    ],
)
def test_unknown_model_names_never_become_metric_labels(owner_key, path, body):
    from usage.metrics import exposition

    result = call("POST", path, owner_key, body)
    assert result.status == 404, result.body
    assert b"made-up-model-xyz" not in exposition()
