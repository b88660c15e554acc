"""A model routed to an external OpenAI-compatible engine. The engine here is a second portal
account on the same live server (it speaks the OpenAI API), so the route is exercised over real
HTTP with streaming; keys, metering and limits apply to the caller as for in-process models."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

pytestmark = pytest.mark.e2e


def test_upstream_model_streams_and_is_metered_for_the_caller(portal_server):
    upstream_key = portal_server.create_user_and_key("engine-account@example.com")
    portal_server.manage(
        "shell",
        "-c",
        "from inference.models import RegisteredModel; RegisteredModel.objects.create("
        "name='smol-remote', kind='chat', backend='upstream', "
        f"upstream_url='{portal_server.url}/v1', upstream_api_key='{upstream_key}', "
        "upstream_model='SmolLM2-135M-Instruct', context_length=8192)",
    )
    caller_key = portal_server.create_user_and_key("remote-caller@example.com")
    sdk = openai.OpenAI(base_url=f"{portal_server.url}/v1", api_key=caller_key, max_retries=0, timeout=120)

    deadline = time.monotonic() + 15  # the server re-reads the registry every few seconds
    while "smol-remote" not in {model.id for model in sdk.models.list()}:
        assert time.monotonic() < deadline, "the new model never appeared"
        time.sleep(0.5)

    question = [{"role": "user", "content": "What is the capital of France? One word."}]
    plain = sdk.chat.completions.create(model="smol-remote", messages=question, max_tokens=12, temperature=0)
    assert plain.model == "smol-remote" and "Paris" in plain.choices[0].message.content
    stream = sdk.chat.completions.create(
        model="smol-remote",
        messages=question,
        max_tokens=12,
        temperature=0.5,
        seed=None,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[-1].usage.completion_tokens > 0
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    caller_rows = portal_server.usage_rows("remote-caller@example.com", expected=4)
    remote = [row for row in caller_rows if row["model"] == "smol-remote"]
    assert len(remote) == 2
    assert remote[0]["completion_tokens"] == plain.usage.completion_tokens
    assert remote[1]["streamed"] and remote[1]["completion_tokens"] == chunks[-1].usage.completion_tokens
    engine_rows = portal_server.usage_rows("engine-account@example.com", expected=2)
    assert {row["model"] for row in engine_rows} == {"SmolLM2-135M-Instruct"}


def test_unreachable_upstream_is_a_clean_502(portal_server):
    portal_server.manage(
        "shell",
        "-c",
        "from inference.models import RegisteredModel; RegisteredModel.objects.create("
        "name='gone-remote', kind='chat', backend='upstream', upstream_url='http://127.0.0.1:9/v1', "
        "upstream_model='x', context_length=4096)",
    )
    key = portal_server.create_user_and_key("gone-caller@example.com")
    headers = {"Authorization": f"Bearer {key}"}
    body = {"model": "gone-remote", "messages": [{"role": "user", "content": "hi"}]}
    deadline = time.monotonic() + 15
    while True:
        response = httpx.post(f"{portal_server.url}/v1/chat/completions", json=body, headers=headers, timeout=30)
        if response.status_code != 404 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_error"
