"""The /v1 API on the real embedded models, in-process: wire shapes, usage rows, caching."""

from __future__ import annotations

import base64
import struct

import pytest
from django.test import override_settings

from tests.inference.helpers import call
from usage.models import UsageRecord
from usage.recorder import recorder

CHAT_MODEL = "SmolLM2-135M-Instruct"
EMBED_MODEL = "all-MiniLM-L6-v2"
QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


def flushed_usage() -> list[UsageRecord]:
    recorder().flush()
    return list(UsageRecord.objects.order_by("created_at", "id"))


@pytest.mark.model
def test_chat_completion_shape_and_usage_row(owner, owner_key):
    result = call(
        "POST",
        "/v1/chat/completions",
        owner_key,
        {"model": CHAT_MODEL, "messages": QUESTION, "max_tokens": 16, "temperature": 0},
    )
    assert result.status == 200
    body = result.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert "Paris" in body["choices"][0]["message"]["content"]
    assert result.headers["x-request-id"] and result.headers["x-ratelimit-remaining-requests"] == "19"

    (row,) = flushed_usage()
    usage = body["usage"]
    assert (row.prompt_tokens, row.completion_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert row.user == owner and row.api_key.name == "owner key" and row.model == CHAT_MODEL
    assert row.endpoint == "chat.completions" and row.status_code == 200 and not row.cached
    assert row.request_id == result.headers["x-request-id"]
    assert row.ttft_ms is not None and row.latency_ms >= row.ttft_ms


@pytest.mark.model
def test_streamed_chat_follows_the_wire_contract_and_is_metered(owner_key):
    result = call(
        "POST",
        "/v1/chat/completions",
        owner_key,
        {
            "model": CHAT_MODEL,
            "messages": QUESTION,
            "max_tokens": 20,
            "temperature": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    assert result.status == 200 and result.headers["content-type"].startswith("text/event-stream")
    events = result.events()
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert len({chunk["id"] for chunk in chunks}) == 1 and len({chunk["created"] for chunk in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    finals = [chunk for chunk in chunks if chunk["choices"] and chunk["choices"][0]["finish_reason"]]
    assert len(finals) == 1 and finals[0]["choices"][0]["delta"] == {}
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["completion_tokens"] > 0
    assert all(chunk["usage"] is None for chunk in chunks[:-1])
    text = "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks[:-1])
    assert "Paris" in text

    (row,) = flushed_usage()
    assert row.streamed and row.completion_tokens == usage_chunk["usage"]["completion_tokens"]
    assert row.prompt_tokens == usage_chunk["usage"]["prompt_tokens"]


@pytest.mark.model
def test_text_completion_with_stop(owner_key):
    result = call(
        "POST",
        "/v1/completions",
        owner_key,
        {"model": CHAT_MODEL, "prompt": "1, 2, 3, 4,", "max_tokens": 20, "temperature": 0, "stop": ["7"]},
    )
    choice = result.json()["choices"][0]
    assert result.json()["object"] == "text_completion"
    assert "7" not in choice["text"] and "5" in choice["text"] and choice["finish_reason"] == "stop"


@pytest.mark.model
def test_embeddings_float_and_base64_agree(owner_key):
    floats = call("POST", "/v1/embeddings", owner_key, {"model": EMBED_MODEL, "input": ["hello world", "bonjour"]})
    packed = call(
        "POST",
        "/v1/embeddings",
        owner_key,
        {"model": EMBED_MODEL, "input": ["hello world", "bonjour"], "encoding_format": "base64"},
    )
    assert floats.status == packed.status == 200
    vectors = [item["embedding"] for item in floats.json()["data"]]
    decoded = [list(struct.unpack("<384f", base64.b64decode(item["embedding"]))) for item in packed.json()["data"]]
    assert len(vectors[0]) == 384
    assert decoded[0] == pytest.approx(vectors[0], abs=1e-6)
    assert floats.json()["usage"]["prompt_tokens"] > 0
    rows = flushed_usage()
    assert [row.endpoint for row in rows] == ["embeddings", "embeddings"]
    assert rows[0].prompt_tokens == floats.json()["usage"]["prompt_tokens"]


@pytest.mark.model
def test_wrong_embedding_dimensions_is_400(owner_key):
    result = call("POST", "/v1/embeddings", owner_key, {"model": EMBED_MODEL, "input": "x", "dimensions": 10})
    assert result.status == 400 and result.json()["error"]["param"] == "dimensions"


@pytest.mark.model
def test_plan_caps_max_tokens(owner, owner_key):
    owner.plan.max_tokens_per_request = 5
    owner.plan.save()
    result = call(
        "POST",
        "/v1/completions",
        owner_key,
        {"model": CHAT_MODEL, "prompt": "Once upon a time", "max_tokens": 500, "temperature": 0},
    )
    assert result.json()["usage"]["completion_tokens"] <= 5
    assert result.json()["choices"][0]["finish_reason"] == "length"


@pytest.mark.model
def test_n_choices_with_a_seed_are_reproducible(owner_key):
    body = {
        "model": CHAT_MODEL,
        "messages": [{"role": "user", "content": "Name a colour."}],
        "max_tokens": 8,
        "temperature": 1.0,
        "seed": 7,
        "n": 2,
    }
    with override_settings(RESPONSE_CACHE_SECONDS=0):
        first, second = (call("POST", "/v1/chat/completions", owner_key, body).json() for _ in range(2))
    assert [choice["index"] for choice in first["choices"]] == [0, 1]
    assert first["choices"] == second["choices"]
    assert first["usage"] == second["usage"] and first["usage"]["completion_tokens"] >= 2


@pytest.mark.model
def test_deterministic_requests_are_answered_from_the_cache(owner_key):
    body = {"model": CHAT_MODEL, "messages": QUESTION, "max_tokens": 12, "temperature": 0}
    first = call("POST", "/v1/chat/completions", owner_key, body).json()
    second = call("POST", "/v1/chat/completions", owner_key, body).json()
    streamed = call("POST", "/v1/chat/completions", owner_key, {**body, "stream": True}).events()
    assert second["choices"] == first["choices"] and second["usage"] == first["usage"]
    streamed_text = "".join(event["choices"][0]["delta"].get("content", "") for event in streamed[:-1])
    assert streamed_text == first["choices"][0]["message"]["content"]
    assert [row.cached for row in flushed_usage()] == [False, True, True]


@override_settings(RESPONSE_CACHE_SECONDS=0)
def test_operators_can_turn_the_cache_off(owner_key):
    body = {"model": CHAT_MODEL, "messages": QUESTION, "max_tokens": 4, "temperature": 0}
    call("POST", "/v1/chat/completions", owner_key, body)
    call("POST", "/v1/chat/completions", owner_key, body)
    assert [row.cached for row in flushed_usage()] == [False, False]


def test_failed_requests_are_recorded_with_zero_tokens(owner_key):
    result = call("POST", "/v1/chat/completions", owner_key, {"model": "gpt-9", "messages": QUESTION})
    assert result.status == 404
    (row,) = flushed_usage()
    assert (row.status_code, row.error_code, row.prompt_tokens, row.completion_tokens) == (404, "model_not_found", 0, 0)


@pytest.mark.model
def test_context_overflow_is_a_400(owner_key):
    result = call(
        "POST", "/v1/completions", owner_key, {"model": CHAT_MODEL, "prompt": "hello " * 9000, "max_tokens": 5}
    )
    assert result.status == 400 and result.json()["error"]["code"] == "context_length_exceeded"


@pytest.mark.model
def test_native_tasks_answer_and_are_metered(owner_key):
    generated = call("POST", "/api/v1/generate", owner_key, {"prompt": "Say hi.", "max_length": 8})
    assert generated.status == 200 and generated.json()["text"]
    asked = call(
        "POST", "/api/v1/ask", owner_key, {"question": "What colour is the sky on a clear day?", "max_length": 16}
    )
    assert asked.status == 200 and "blue" in asked.json()["answer"].lower()
    classified = call(
        "POST",
        "/api/v1/classify",
        owner_key,
        {"text": "The team won the football match.", "labels": ["sports", "cooking", "finance"]},
    )
    assert classified.status == 200 and classified.json()["label"] == "sports"
    assert classified.headers["x-ratelimit-limit-requests"] == "20"
    rows = flushed_usage()
    assert [row.endpoint for row in rows] == ["generate", "ask", "classify"]
    assert rows[0].completion_tokens == generated.json()["completion_tokens"]
    assert rows[2].model == EMBED_MODEL and rows[2].prompt_tokens > 0


@pytest.mark.model
def test_streamed_n_choices_each_end_with_their_own_finish(owner_key):
    body = {
        "model": CHAT_MODEL,
        "messages": QUESTION,
        "max_tokens": 6,
        "temperature": 0.9,
        "seed": 3,
        "n": 2,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    events = call("POST", "/v1/chat/completions", owner_key, body).events()
    chunks = [event for event in events[:-1] if event["choices"]]
    roles = [chunk["choices"][0]["index"] for chunk in chunks if chunk["choices"][0]["delta"].get("role")]
    finishes = [chunk["choices"][0]["index"] for chunk in chunks if chunk["choices"][0]["finish_reason"]]
    assert sorted(roles) == [0, 1] and sorted(finishes) == [0, 1]
    usage = events[-2]["usage"]
    assert events[-1] == "[DONE]" and usage["completion_tokens"] <= 12


@pytest.mark.model
def test_prepare_models_command_loads_and_reports(db, capsys):
    from django.core.management import call_command

    call_command("prepare_models")
    out = capsys.readouterr().out
    assert "SmolLM2-135M-Instruct: ready in" in out and "all-MiniLM-L6-v2: ready in" in out
