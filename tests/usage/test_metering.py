"""One way to meter a request: `metered()` finishes exactly once, whatever happens, on every entry point."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync

from accounts.caller import Caller
from inference.errors import ApiError
from tests.inference.helpers import call
from tests.playground.conftest import CHAT_MODEL
from usage.metering import LimitExceeded, metered
from usage.models import UsageRecord
from usage.recorder import recorder

QUESTION = [{"role": "user", "content": "Hi"}]


def flushed_usage() -> list[UsageRecord]:
    recorder().flush()
    return list(UsageRecord.objects.order_by("id"))


def run_metered(body, *, caller=None) -> None:
    """Run `body(meter)` inside metered("test"), swallowing what it raises."""

    async def run() -> None:
        try:
            async with metered("test", request_id="rid", caller=caller) as meter:
                await body(meter)
        except BaseException:
            pass

    async_to_sync(run)()


# --- the context manager ---------------------------------------------------------------------------


def test_success_is_recorded_once_with_its_tokens(owner):
    async def body(meter):
        meter.model, meter.prompt_tokens, meter.completion_tokens = "m", 3, 4
        await meter.finish()  # an early explicit finish: the exit must not record a second row

    run_metered(body, caller=Caller.for_user(owner))
    (row,) = flushed_usage()
    assert (row.endpoint, row.status_code, row.error_code, row.total_tokens) == ("test", 200, "", 7)
    assert row.request_id == "rid" and row.user == owner


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (ApiError("no", status=404, code="model_not_found"), 404, "model_not_found"),
        (ApiError("bad", status=400), 400, "invalid_request_error"),
        (LimitExceeded("slow down", code="rate_limit_exceeded", headers={}), 429, "rate_limit_exceeded"),
        (RuntimeError("boom"), 500, "server_error"),
        (KeyError("surprise"), 500, "server_error"),
    ],
)
def test_any_exception_is_recorded_with_its_status_and_reraised(owner, error, status, code):
    seen = []

    async def run() -> None:
        async with metered("test", caller=Caller.for_user(owner)):
            raise error

    try:
        async_to_sync(run)()
    except BaseException as exc:
        seen.append(exc)
    assert seen == [error]
    (row,) = flushed_usage()
    assert (row.status_code, row.error_code) == (status, code)


def test_an_error_answered_in_place_is_recorded_as_that_error(owner):
    async def body(meter):
        meter.fail(status=503, error_code="overloaded")

    run_metered(body, caller=Caller.for_user(owner))
    (row,) = flushed_usage()
    assert (row.status_code, row.error_code) == (503, "overloaded")


def test_a_cancelled_request_is_billed_for_what_ran(owner):
    async def body(meter):
        meter.prompt_tokens, meter.completion_tokens = 5, 2
        meter.client_disconnected = True
        raise asyncio.CancelledError

    run_metered(body, caller=Caller.for_user(owner))
    (row,) = flushed_usage()
    assert (row.status_code, row.error_code, row.total_tokens, row.client_disconnected) == (
        200,
        "client_disconnected",
        7,
        True,
    )


def test_a_handed_over_stream_finishes_at_its_own_end(owner):
    handed = []

    async def body(meter):
        meter.hand_over()
        handed.append(meter)

    run_metered(body, caller=Caller.for_user(owner))
    assert flushed_usage() == []  # the stream has not ended yet
    meter = handed[0]
    meter.completion_tokens = 9
    async_to_sync(meter.finish)(status=200)
    async_to_sync(meter.finish)(status=500)  # a second finish is a no-op
    (row,) = flushed_usage()
    assert (row.status_code, row.completion_tokens, row.streamed) == (200, 9, True)


def test_an_exception_after_hand_over_still_records_the_request(owner):
    async def body(meter):
        meter.hand_over()
        raise RuntimeError("the response was never returned")

    run_metered(body, caller=Caller.for_user(owner))
    (row,) = flushed_usage()
    assert (row.status_code, row.error_code) == (500, "server_error")


def test_unauthenticated_requests_are_counted_in_metrics_but_bill_nobody(db):
    run_metered(lambda meter: asyncio.sleep(0))
    assert flushed_usage() == []


# --- the unexpected-exception path, on every entry point ----------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "endpoint"),
    [
        ("/v1/chat/completions", {"model": CHAT_MODEL, "messages": QUESTION}, "chat.completions"),
        ("/v1/chat/completions", {"model": CHAT_MODEL, "messages": QUESTION, "stream": True}, "chat.completions"),
        ("/v1/completions", {"model": CHAT_MODEL, "prompt": "Hi"}, "completions"),
        ("/v1/embeddings", {"model": "all-MiniLM-L6-v2", "input": "Hi"}, "embeddings"),
    ],
)
def test_v1_answers_an_openai_500_and_records_it(owner, owner_key, broken_engine, path, body, endpoint):
    result = call("POST", path, owner_key, body)
    assert result.status == 500
    assert result.json()["error"]["type"] == "server_error"
    assert "deep down" not in result.body.decode()  # no internals leak to the client
    assert result.headers["x-ratelimit-limit-requests"]
    (row,) = flushed_usage()
    assert (row.endpoint, row.status_code, row.error_code, row.user) == (endpoint, 500, "server_error", owner)


def test_native_task_answers_a_json_500_and_records_it(owner, owner_key, broken_engine):
    result = call("POST", "/api/v1/generate", owner_key, {"prompt": "Say hi.", "max_length": 8})
    assert result.status == 500
    assert result.headers["content-type"] == "application/json"
    assert "deep down" not in result.json()["detail"]
    (row,) = flushed_usage()
    assert (row.endpoint, row.status_code, row.error_code) == ("generate", 500, "server_error")


def test_playground_embeddings_answer_a_500_and_record_it(owner, owner_client, broken_engine):
    response = owner_client.post(
        "/playground/embeddings/", json.dumps({"texts": ["a"]}), content_type="application/json"
    )
    assert response.status_code == 500 and response.json()["error"]["type"] == "server_error"
    (row,) = flushed_usage()
    assert (row.endpoint, row.status_code, row.error_code) == ("playground.embeddings", 500, "server_error")
