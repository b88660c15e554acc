"""The OpenAI surface with the official openai SDK against an upstream fake that speaks tools and
JSON mode: parameters the model's upstream supports are forwarded verbatim, tool_calls, logprobs
and finish_reason come back as the upstream gave them (streamed deltas too), anything a model
cannot honour is a 400 naming the parameter; `user` lands on usage rows; keep-alive comments."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest
from asgiref.sync import async_to_sync
from django.core.asgi import get_asgi_application
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import AsyncClient

from inference.models import RegisteredModel
from inference.runtime import current_manager
from tests.inference.fake_upstream import JSON_ANSWER, TOOL_ARGUMENTS, FakeUpstream
from tests.inference.helpers import call
from usage.models import UsageRecord
from usage.recorder import recorder

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]
ALL_CAPABILITIES = ["tools", "response_format", "logprobs", "logit_bias"]


@pytest.fixture
def upstream():
    server = FakeUpstream("up").start()
    yield server
    server.stop()


@pytest.fixture
def capable(db, upstream) -> RegisteredModel:
    return RegisteredModel.objects.create(
        name="capable",
        kind="chat",
        backend="upstream",
        upstream_url=upstream.url,
        upstream_model="big-model",
        context_length=32768,
        capabilities=ALL_CAPABILITIES,
    )


@pytest.fixture
def plain(db, upstream) -> RegisteredModel:
    """An upstream that supports none of the optional parameters."""
    return RegisteredModel.objects.create(name="plain", kind="chat", backend="upstream", upstream_url=upstream.url)


@pytest.fixture
def sdk(owner_key):
    """Runs `scenario(client)` with an AsyncOpenAI client whose HTTP goes straight into the portal's
    ASGI app, on the test's database connection (as Django's test client does)."""
    app = get_asgi_application()
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)

    def run(scenario):
        async def main():
            http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
            client = openai.AsyncOpenAI(
                base_url="http://testserver/v1", api_key=owner_key, max_retries=0, http_client=http
            )
            async with http:
                return await scenario(client)

        return async_to_sync(main)()

    yield run
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_a_tool_call_comes_back_as_the_upstream_gave_it(sdk, capable, upstream):
    async def scenario(client: openai.AsyncOpenAI):
        return await client.chat.completions.create(
            model="capable",
            messages=QUESTION,
            tools=[WEATHER_TOOL],
            tool_choice="auto",
            parallel_tool_calls=False,
            user="end-user-42",
        )

    reply = sdk(scenario)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call_ = choice.message.tool_calls[0]
    assert (call_.id, call_.function.name, call_.function.arguments) == ("call_1", "get_weather", TOOL_ARGUMENTS)
    sent = upstream.bodies[-1]
    assert sent["model"] == "big-model" and sent["stream"] is False
    assert sent["tools"] == [WEATHER_TOOL] and sent["tool_choice"] == "auto" and sent["parallel_tool_calls"] is False
    assert sent["user"] == "end-user-42"


def test_the_tool_result_turn_is_forwarded_with_its_ids(sdk, capable, upstream):
    conversation = [
        *QUESTION,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": TOOL_ARGUMENTS}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21 C"},
    ]

    async def scenario(client: openai.AsyncOpenAI):
        return await client.chat.completions.create(
            model="capable", messages=conversation, tools=[WEATHER_TOOL], tool_choice="none"
        )

    reply = sdk(scenario)
    assert reply.choices[0].finish_reason == "stop" and reply.choices[0].message.content == "Hello from up"
    assert upstream.bodies[-1]["messages"] == conversation


def test_a_streamed_tool_call_arrives_as_tool_call_deltas(sdk, capable, upstream):
    async def scenario(client: openai.AsyncOpenAI):
        stream = await client.chat.completions.create(
            model="capable",
            messages=QUESTION,
            tools=[WEATHER_TOOL],
            stream=True,
            stream_options={"include_usage": True},
        )
        return [chunk async for chunk in stream]

    chunks = sdk(scenario)
    deltas = [chunk.choices[0].delta for chunk in chunks if chunk.choices]
    calls = [call_ for delta in deltas for call_ in delta.tool_calls or []]
    assert calls[0].id == "call_1" and calls[0].function.name == "get_weather"
    assert "".join(call_.function.arguments or "" for call_ in calls) == TOOL_ARGUMENTS
    assert all(call_.index == 0 for call_ in calls)
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "tool_calls"
    assert chunks[-1].usage.prompt_tokens == 7 and chunks[-1].usage.completion_tokens == 5
    assert upstream.bodies[-1]["stream"] is True


def test_json_mode_and_json_schema_are_forwarded_verbatim(sdk, capable, upstream):
    schema = {
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "strict": True,
            "schema": {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]},
        },
    }

    async def scenario(client: openai.AsyncOpenAI):
        json_object = await client.chat.completions.create(
            model="capable", messages=QUESTION, response_format={"type": "json_object"}
        )
        json_schema = await client.chat.completions.create(model="capable", messages=QUESTION, response_format=schema)
        return json_object, json_schema

    json_object, json_schema = sdk(scenario)
    assert json.loads(json_object.choices[0].message.content) == json.loads(JSON_ANSWER)
    assert json.loads(json_schema.choices[0].message.content) == {"answer": "Paris"}
    assert upstream.bodies[-2]["response_format"] == {"type": "json_object"}
    assert upstream.bodies[-1]["response_format"] == schema


def test_logprobs_and_logit_bias_pass_through_streamed_or_not(sdk, capable, upstream):
    async def scenario(client: openai.AsyncOpenAI):
        whole = await client.chat.completions.create(
            model="capable", messages=QUESTION, logprobs=True, top_logprobs=2, logit_bias={"15": -100}
        )
        stream = await client.chat.completions.create(model="capable", messages=QUESTION, logprobs=True, stream=True)
        return whole, [chunk async for chunk in stream]

    whole, chunks = sdk(scenario)
    assert whole.choices[0].logprobs.content[0].logprob == -0.25
    assert whole.choices[0].logprobs.content[0].token == "Hello from up"
    streamed = [c.choices[0].logprobs.content[0].token for c in chunks if c.choices and c.choices[0].logprobs]
    assert "".join(streamed) == "Hello from up"
    assert upstream.bodies[0]["logit_bias"] == {"15": -100} and upstream.bodies[0]["top_logprobs"] == 2


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"tools": [WEATHER_TOOL]}, "tools"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"logprobs": True}, "logprobs"),
        ({"logit_bias": {"15": 5}}, "logit_bias"),
    ],
)
def test_parameters_a_model_cannot_honour_are_a_400_naming_them(sdk, plain, upstream, params, param):
    async def scenario(client: openai.AsyncOpenAI):
        with pytest.raises(openai.BadRequestError) as info:
            await client.chat.completions.create(model="plain", messages=QUESTION, **params)
        return info.value

    error = sdk(scenario)
    assert error.status_code == 400
    assert error.body["param"] == param and error.body["code"] == "unsupported_parameter"
    assert error.body["type"] == "invalid_request_error"
    assert upstream.requests == 0  # refused before anything was sent


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tools": [WEATHER_TOOL]}, "tools"),
        ({"tools": [WEATHER_TOOL], "tool_choice": "required"}, "tools"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}, "response_format"),
        ({"logprobs": True, "top_logprobs": 3}, "logprobs"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        (
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "tool", "tool_call_id": "call_1", "content": "42"},
                ]
            },
            "messages[1].tool_call_id",
        ),
    ],
)
def test_in_process_models_refuse_the_optional_parameters_with_their_name(owner_key, body, param):
    request = {"model": "SmolLM2-135M-Instruct", "messages": QUESTION, **body}
    result = call("POST", "/v1/chat/completions", owner_key, request)
    assert result.status == 400, result.body
    error = result.json()["error"]
    assert error["param"] == param and error["code"] == "unsupported_parameter"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools"),
        ({"tool_choice": "sometimes", "tools": [WEATHER_TOOL]}, "tool_choice"),
        ({"tool_choice": "auto"}, "tool_choice"),
        ({"response_format": {"type": "xml"}}, "response_format"),
        ({"response_format": {"type": "json_schema"}}, "response_format"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"top_logprobs": 21, "logprobs": True}, "top_logprobs"),
        ({"logit_bias": {"x": 1}}, "logit_bias"),
        ({"logit_bias": {"5": 101}}, "logit_bias"),
        ({"parallel_tool_calls": True}, "parallel_tool_calls"),
        ({"messages": [{"role": "tool", "content": "42"}]}, "messages[0].tool_call_id"),
        ({"messages": [{"role": "user", "content": "x", "tool_calls": []}]}, "messages[0].tool_calls"),
    ],
)
def test_malformed_passthrough_parameters_are_a_400_naming_them(owner_key, capable, body, param):
    result = call("POST", "/v1/chat/completions", owner_key, {"model": "capable", "messages": QUESTION, **body})
    assert result.status == 400, result.body
    assert result.json()["error"]["param"] == param


def test_the_user_field_is_stored_on_usage_rows_and_filterable(sdk, capable, owner_api, other_user):
    async def scenario(client: openai.AsyncOpenAI):
        for end_user in ("alice", "alice", "bob"):
            await client.chat.completions.create(model="capable", messages=QUESTION, user=end_user)
        await client.chat.completions.create(model="capable", messages=QUESTION)

    sdk(scenario)
    recorder().flush()
    assert sorted(UsageRecord.objects.values_list("end_user", flat=True)) == ["", "alice", "alice", "bob"]

    alice = owner_api.get("/api/usage/", {"end_user": "alice"}).json()
    assert alice["totals"]["requests"] == 2
    grouped = owner_api.get("/api/usage/", {"group_by": "end_user"}).json()
    assert {row["key"]: row["requests"] for row in grouped["data"]} == {"alice": 2, "bob": 1, "": 1}

    from rest_framework.test import APIClient

    stranger = APIClient()
    stranger.force_authenticate(other_user)
    assert stranger.get("/api/usage/", {"end_user": "alice"}).json()["totals"]["requests"] == 0


def test_models_list_the_context_length(owner_key, capable):
    listed = {m["id"]: m for m in call("GET", "/v1/models", owner_key).json()["data"]}
    assert listed["capable"]["context_length"] == 32768
    assert call("GET", "/v1/models/capable", owner_key).json()["context_length"] == 32768


def test_streams_send_keep_alive_comments_while_waiting_for_tokens(owner_key, capable, upstream, settings):
    settings.SSE_KEEPALIVE_SECONDS = 0.1
    upstream.first_token_delay = 0.5  # a long prefill
    upstream.chunk_delay = 0.25  # and slow tokens
    body = {"model": "capable", "messages": QUESTION, "stream": True}
    result = call("POST", "/v1/chat/completions", owner_key, body)
    assert result.status == 200
    raw = result.body.decode()
    before_first_token = raw.split("data: ", 1)[0]
    assert before_first_token.count(": keep-alive\n\n") >= 2
    between_tokens = raw.split('"content":"Hello "', 1)[1].split('"content":"from up"', 1)[0]
    assert ": keep-alive\n\n" in between_tokens
    assert result.events()[-1] == "[DONE]"
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in result.events()[:-1]) == "Hello from up"


def test_the_sdk_reads_a_stream_with_keep_alive_comments(sdk, capable, upstream, settings):
    settings.SSE_KEEPALIVE_SECONDS = 0.1
    upstream.first_token_delay = 0.35

    async def scenario(client: openai.AsyncOpenAI):
        stream = await client.chat.completions.create(model="capable", messages=QUESTION, stream=True)
        return "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])

    assert sdk(scenario) == "Hello from up"


def test_an_upstream_failure_after_keep_alives_is_reported_in_band(owner_key, capable, upstream, settings):
    settings.SSE_KEEPALIVE_SECONDS = 0.1
    upstream.delay, upstream.status = 0.4, 503
    body = {"model": "capable", "messages": QUESTION, "stream": True}
    result = call("POST", "/v1/chat/completions", owner_key, body)
    assert result.status == 200  # the headers went out with the first keep-alive
    assert result.body.startswith(b": keep-alive\n\n")
    events = result.events()
    assert events[-2]["error"]["code"] == "upstream_error" and "caught fire" in events[-2]["error"]["message"]
    assert events[-1] == "[DONE]"
    assert str(upstream.port) not in result.body.decode()


def test_a_quick_upstream_failure_keeps_its_http_status(owner_key, capable, upstream, settings):
    settings.SSE_KEEPALIVE_SECONDS = 5
    upstream.status = 503
    result = call("POST", "/v1/chat/completions", owner_key, {"model": "capable", "messages": QUESTION, "stream": True})
    assert result.status == 502 and result.json()["error"]["code"] == "upstream_error"


def test_a_client_leaving_during_keep_alives_stops_the_upstream_call_and_is_billed_once(
    owner_key, capable, upstream, settings
):
    settings.SSE_KEEPALIVE_SECONDS = 0.1
    upstream.delay = 30  # the first token would take forever

    async def scenario() -> None:
        client = AsyncClient()
        response = await client.post(
            "/v1/chat/completions",
            data=json.dumps({"model": "capable", "messages": QUESTION, "stream": True}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {owner_key}"},
        )
        assert response.status_code == 200
        received: list[bytes] = []

        async def read() -> None:
            async for chunk in response.streaming_content:
                received.append(chunk)

        reader = asyncio.ensure_future(read())
        await asyncio.sleep(0.35)
        reader.cancel()  # what Django's ASGI handler does when the client disconnects
        with pytest.raises(asyncio.CancelledError):
            await reader
        assert len(received) >= 2 and set(received) == {b": keep-alive\n\n"}
        manager = await current_manager()
        for _ in range(50):
            if not any(d["in_flight"] for d in manager.state()["capable"]["deployments"]):
                break
            await asyncio.sleep(0.05)
        assert [d["in_flight"] for d in manager.state()["capable"]["deployments"]] == [0]

    async_to_sync(scenario)()
    recorder().flush()
    (row,) = UsageRecord.objects.all()
    assert (row.status_code, row.client_disconnected, row.streamed) == (200, True, True)


def test_text_completions_forward_integer_logprobs_only_where_supported(owner_key, capable, plain, upstream):
    body = {"prompt": "The capital of France is", "logprobs": 2, "max_tokens": 3}
    refused = call("POST", "/v1/completions", owner_key, {**body, "model": "plain"})
    assert refused.status == 400 and refused.json()["error"]["param"] == "logprobs"
    assert upstream.requests == 0
    answered = call("POST", "/v1/completions", owner_key, {**body, "model": "capable"})
    assert answered.status == 200, answered.body
    assert upstream.bodies[-1]["logprobs"] == 2 and upstream.bodies[-1]["prompt"] == body["prompt"]
    assert answered.json()["choices"][0]["logprobs"] is not None  # as the upstream gave it


def test_a_request_the_upstream_refuses_is_a_400_with_its_reason_and_cools_nothing(owner_key, capable, upstream):
    upstream.status = 400
    result = call("POST", "/v1/chat/completions", owner_key, {"model": "capable", "messages": QUESTION})
    assert result.status == 400, result.body
    error = result.json()["error"]
    assert error["type"] == "invalid_request_error" and "caught fire" in error["message"]
    assert str(upstream.port) not in result.body.decode()
