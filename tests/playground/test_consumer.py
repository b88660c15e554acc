"""The playground websocket through the full ASGI stack (origin check, session auth, routing)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from urllib.parse import urlsplit

import pytest
from asgiref.sync import sync_to_async

from accounts.models import Plan
from inference.runtime import current_manager
from playground import services
from playground.generation import user_slots
from playground.models import Conversation, Message
from tests.playground.conftest import CHAT_MODEL, communicator
from usage.models import UsageRecord
from usage.recorder import recorder

pytestmark = pytest.mark.django_db(transaction=True)

TERMINAL = {"done", "stopped", "error"}
QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


def generate(**overrides) -> dict:
    message = {
        "type": "generate",
        "mode": "chat",
        "model": CHAT_MODEL,
        "messages": QUESTION,
        "params": {"temperature": 0, "max_tokens": 12},
    }
    message.update(overrides)
    return message


async def events_until_end(ws, *, timeout: float = 60) -> list[dict]:
    """Events up to and including the terminal one (done, stopped or error)."""
    events = []
    while True:
        event = await ws.receive_json_from(timeout=timeout)
        events.append(event)
        if event["type"] in TERMINAL:
            return events


async def tokens_then_stop(ws, *, after: int) -> tuple[list[dict], list[dict]]:
    """Read `after` tokens, send stop, and read to the end: (events before stop, events after)."""
    before = []
    while sum(event["type"] == "token" for event in before) < after:
        event = await ws.receive_json_from(timeout=60)
        assert event["type"] not in TERMINAL, event
        before.append(event)
    await ws.send_json_to({"type": "stop"})
    return before, await events_until_end(ws)


async def scheduler_running() -> int:
    generator = await (await current_manager()).get_text_generator(CHAT_MODEL)
    return generator.stats()["running"]


async def wait_until_idle(timeout: float = 5.0) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (running := await scheduler_running()) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    return running


@sync_to_async
def usage_rows() -> list[UsageRecord]:
    recorder().flush()
    return list(UsageRecord.objects.order_by("id"))


# --- connection checks ------------------------------------------------------------------------


async def test_anonymous_socket_is_told_and_closed_with_4401():
    ws = communicator(cookie=None)
    connected, _ = await ws.connect()
    assert connected
    event = await ws.receive_json_from()
    assert event["type"] == "error" and event["code"] == "not_authenticated"
    closing = await ws.receive_output()
    assert closing == {"type": "websocket.close", "code": 4401, "reason": None} or (
        closing["type"] == "websocket.close" and closing["code"] == 4401
    )


async def test_a_bogus_session_cookie_is_anonymous():
    ws = communicator(cookie="not-a-session")
    assert (await ws.connect())[0]
    assert (await ws.receive_json_from())["code"] == "not_authenticated"
    assert (await ws.receive_output())["code"] == 4401


@pytest.mark.parametrize("origin", ["http://evil.example", "https://localhost.evil.example", None])
async def test_foreign_or_missing_origin_is_refused(alice_cookie, origin):
    ws = communicator(cookie=alice_cookie, origin=origin)
    connected, _ = await ws.connect()
    assert not connected


async def test_allowed_origin_with_a_session_is_accepted(alice_cookie, open_socket):
    ws = await open_socket(alice_cookie)
    await ws.send_json_to({"type": "ping"})
    assert await ws.receive_json_from() == {"type": "pong"}


async def test_oversized_message_gets_an_error_event_and_the_socket_stays_usable(alice_cookie, open_socket):
    ws = await open_socket(alice_cookie)
    huge = generate(messages=[{"role": "user", "content": "x" * (70 * 1024)}])
    await ws.send_json_to(huge)
    event = await ws.receive_json_from()
    assert event["type"] == "error" and event["code"] == "message_too_large" and event["status"] == 413
    await ws.send_json_to({"type": "ping"})
    assert (await ws.receive_json_from())["type"] == "pong"
    assert await usage_rows() == []  # refused before anything ran


async def test_size_cap_counts_bytes_not_characters(alice_cookie, open_socket, settings):
    settings.PLAYGROUND_MAX_MESSAGE_BYTES = 1000
    ws = await open_socket(alice_cookie)
    await ws.send_to(text_data=json.dumps({"type": "ping", "pad": "é" * 600}, ensure_ascii=False))
    assert (await ws.receive_json_from())["code"] == "message_too_large"


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "invalid_json"),
        ("[1, 2]", "invalid_message"),
        ('{"type": "dance"}', "invalid_message"),
        ("[" * 10_000 + "]" * 10_000, "invalid_json"),  # RecursionError in json.loads
        ('{"type": "generate", "content": "\\ud800"}', "invalid_json"),  # a lone surrogate
    ],
)
async def test_malformed_messages_get_typed_errors(alice_cookie, open_socket, frame, code):
    ws = await open_socket(alice_cookie)
    await ws.send_to(text_data=frame)
    event = await ws.receive_json_from()
    assert event["type"] == "error" and event["code"] == code and event["message"]


# --- validation, limits, ownership (no model needed) --------------------------------------------


async def test_invalid_parameters_are_reported_with_the_param(alice_cookie, open_socket):
    ws = await open_socket(alice_cookie)
    await ws.send_json_to(generate(params={"temperature": 5}))
    (event,) = await events_until_end(ws)
    assert event["type"] == "error" and event["status"] == 400 and event["param"] == "temperature"


async def test_unknown_model_is_model_not_found(alice_cookie, open_socket):
    ws = await open_socket(alice_cookie)
    await ws.send_json_to(generate(model="gpt-9"))
    (event,) = await events_until_end(ws)
    assert event["code"] == "model_not_found" and event["status"] == 404


async def test_another_users_conversation_is_not_found(alice_cookie, bob, open_socket):
    bobs = await sync_to_async(services.conversation_create)(user=bob, model=CHAT_MODEL, title="bob's secrets")
    ws = await open_socket(alice_cookie)
    await ws.send_json_to(generate(conversation_id=bobs.pk))
    (event,) = await events_until_end(ws)
    assert event["type"] == "error" and event["code"] == "not_found" and event["status"] == 404
    assert await Message.objects.filter(conversation=bobs).acount() == 0
    assert await Conversation.objects.filter(user__email="alice@example.com").acount() == 0


async def test_plan_request_limit_gives_a_429_error_event_and_is_recorded(alice, alice_cookie, open_socket):
    await Plan.objects.filter(pk=alice.plan_id).aupdate(requests_per_minute=1)
    ws = await open_socket(alice_cookie)
    await ws.send_json_to(generate(params={"temperature": 9}))  # counts as a request, fails validation
    assert (await events_until_end(ws))[-1]["status"] == 400
    await ws.send_json_to(generate())
    (event,) = await events_until_end(ws)
    assert event["type"] == "error" and event["code"] == "rate_limit_exceeded" and event["status"] == 429
    assert event["retry_after"] >= 1
    rows = await usage_rows()
    assert [(row.endpoint, row.status_code, row.error_code) for row in rows] == [
        ("playground", 400, "invalid_request_error"),
        ("playground", 429, "rate_limit_exceeded"),
    ]
    assert all(row.user_id == alice.pk and row.api_key_id is None for row in rows)


async def test_daily_token_budget_gives_insufficient_quota(alice, alice_cookie, open_socket):
    await Plan.objects.filter(pk=alice.plan_id).aupdate(tokens_per_day=0)
    ws = await open_socket(alice_cookie)
    await ws.send_json_to(generate())
    (event,) = await events_until_end(ws)
    assert event["code"] == "insufficient_quota" and event["status"] == 429


async def test_an_unexpected_failure_is_a_server_error_event_and_is_recorded(
    alice, alice_cookie, open_socket, broken_engine
):
    ws = await open_socket(alice_cookie)
    await ws.send_json_to(generate())
    (event,) = await events_until_end(ws)
    assert (event["type"], event["code"], event["status"]) == ("error", "server_error", 500)
    assert "deep down" not in event["message"]
    (row,) = await usage_rows()
    assert (row.endpoint, row.status_code, row.error_code, row.user_id) == ("playground", 500, "server_error", alice.pk)


# --- generation on the real embedded model ---------------------------------------------------------


@pytest.mark.model
async def test_tokens_arrive_in_order_and_done_carries_the_recorded_usage(alice, alice_cookie, open_socket):
    ws = await open_socket(alice_cookie)
    await ws.send_json_to(generate(system="Answer in one short sentence."))
    events = await events_until_end(ws)

    started, *tokens, done = events
    assert started["type"] == "started" and started["model"] == CHAT_MODEL
    assert tokens and all(event["type"] == "token" for event in tokens)
    assert [event["index"] for event in tokens] == list(range(len(tokens)))
    text = "".join(event["text"] for event in tokens)
    assert "Paris" in text
    assert done["type"] == "done" and done["finish_reason"] in {"stop", "length"}
    usage = done["usage"]
    assert usage["completion_tokens"] > 0 and usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert done["tokens_per_s"] > 0 and done["conversation_id"] == started["conversation_id"]

    (row,) = await usage_rows()
    assert (row.prompt_tokens, row.completion_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert row.endpoint == "playground" and row.user_id == alice.pk and row.api_key_id is None
    assert row.status_code == 200 and row.streamed and not row.error_code and row.model == CHAT_MODEL
    assert row.request_id == started["generation_id"]

    conversation = await Conversation.objects.aget(pk=done["conversation_id"])
    assert conversation.user_id == alice.pk and conversation.title == QUESTION[0]["content"]
    assert conversation.system_prompt == "Answer in one short sentence."
    assert conversation.params == {"temperature": 0.0, "max_tokens": 12}
    messages = [message async for message in conversation.messages.order_by("id")]
    assert [(m.role, m.content) for m in messages] == [("user", QUESTION[0]["content"]), ("assistant", text)]
    assert messages[1].completion_tokens == usage["completion_tokens"] and messages[1].tokens_per_s > 0


@pytest.mark.model
async def test_a_second_turn_continues_the_same_conversation(alice_cookie, open_socket):
    ws = await open_socket(alice_cookie)
    await ws.send_json_to(generate(params={"temperature": 0, "max_tokens": 4}))
    first = (await events_until_end(ws))[-1]
    history = [*QUESTION, {"role": "assistant", "content": "Paris."}, {"role": "user", "content": "And Italy?"}]
    await ws.send_json_to(
        generate(conversation_id=first["conversation_id"], messages=history, params={"max_tokens": 4})
    )
    second = (await events_until_end(ws))[-1]
    assert second["type"] == "done" and second["conversation_id"] == first["conversation_id"]
    roles = [m.role async for m in Message.objects.filter(conversation_id=first["conversation_id"]).order_by("id")]
    assert roles == ["user", "assistant", "user", "assistant"]


@pytest.mark.model
async def test_completion_mode_uses_the_raw_prompt(alice_cookie, open_socket):
    ws = await open_socket(alice_cookie)
    await ws.send_json_to(
        {
            "type": "generate",
            "mode": "completion",
            "model": CHAT_MODEL,
            "prompt": "1, 2, 3, 4,",
            "params": {"temperature": 0, "max_tokens": 12, "stop": ["7"]},
        }
    )
    events = await events_until_end(ws)
    text = "".join(event["text"] for event in events if event["type"] == "token")
    assert events[-1]["type"] == "done" and "5" in text and "7" not in text
    conversation = await Conversation.objects.aget(pk=events[-1]["conversation_id"])
    assert conversation.mode == "completion" and conversation.params["stop"] == ["7"]


@pytest.mark.model
async def test_stop_cancels_the_generation_on_the_server(alice_cookie, open_socket):
    ws = await open_socket(alice_cookie)
    await ws.send_json_to(
        generate(
            messages=[{"role": "user", "content": "Write a very long story about a dragon."}],
            params={"temperature": 0.8, "max_tokens": 300},
        )
    )
    before, after = await tokens_then_stop(ws, after=3)
    stopped = after[-1]
    assert stopped["type"] == "stopped", after
    assert all(event["type"] == "token" for event in after[:-1])  # tokens already on their way
    completion_tokens = stopped["usage"]["completion_tokens"]
    assert 3 <= completion_tokens < 300
    assert await wait_until_idle() == 0  # the scheduler dropped the sequence

    (row,) = await usage_rows()
    assert row.error_code == "cancelled" and row.status_code == 200 and not row.client_disconnected
    assert row.completion_tokens == completion_tokens
    reply = await Message.objects.filter(role="assistant").aget()
    streamed = "".join(event["text"] for event in before + after if event["type"] == "token")
    assert reply.finish_reason == "cancelled" and reply.content == streamed
    assert reply.completion_tokens == completion_tokens

    await ws.send_json_to({"type": "ping"})  # the socket carries on
    assert (await ws.receive_json_from())["type"] == "pong"


@pytest.mark.model
async def test_disconnect_cancels_the_generation_and_bills_what_ran(alice_cookie):
    ws = communicator(cookie=alice_cookie)
    assert (await ws.connect(timeout=5))[0]
    assert (await ws.receive_json_from(timeout=5))["type"] == "ready"
    await ws.send_json_to(generate(params={"temperature": 0.8, "max_tokens": 300}))
    tokens = 0
    while tokens < 2:
        tokens += (await ws.receive_json_from(timeout=60))["type"] == "token"
    await ws.disconnect(timeout=15)
    assert await wait_until_idle() == 0
    (row,) = await usage_rows()
    assert row.client_disconnected and row.error_code == "client_disconnected"
    assert 2 <= row.completion_tokens < 300


@pytest.mark.model
async def test_one_generation_per_socket_and_a_per_user_cap(alice, alice_cookie, open_socket, settings):
    settings.PLAYGROUND_MAX_CONCURRENT_PER_USER = 1
    first, second = await open_socket(alice_cookie), await open_socket(alice_cookie)
    await first.send_json_to(generate(params={"temperature": 0.8, "max_tokens": 300}))
    assert (await first.receive_json_from(timeout=60))["type"] == "started"

    await first.send_json_to(generate())
    busy = await first.receive_json_from(timeout=10)
    while busy["type"] == "token":
        busy = await first.receive_json_from(timeout=10)
    assert busy["type"] == "error" and busy["code"] == "generation_in_progress"

    await second.send_json_to(generate())
    capped = await second.receive_json_from(timeout=10)
    assert capped["type"] == "error" and capped["code"] == "too_many_generations" and capped["status"] == 429

    await first.send_json_to({"type": "stop"})
    while (await first.receive_json_from(timeout=30))["type"] != "stopped":
        pass
    assert user_slots.running(alice.pk) == 0
    await second.send_json_to(generate(params={"temperature": 0, "max_tokens": 2}))
    assert (await events_until_end(second))[-1]["type"] == "done"


def _redis_url() -> str | None:
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/3"
    parts = urlsplit(url)
    with socket.socket() as sock:
        sock.settimeout(0.5)
        if sock.connect_ex((parts.hostname or "127.0.0.1", parts.port or 6379)) != 0:
            return None
    return url


@pytest.mark.model
async def test_works_with_the_redis_settings_and_survives_idle_time(alice_cookie, open_socket, settings):
    """What production runs with REDIS_URL (channels-redis layer, Redis cache and limits). An idle
    socket must outlive channels-redis' 5 s blocking poll (redis-py 8 times that poll out)."""
    url = _redis_url()
    if url is None:
        pytest.skip("needs Redis (REDIS_URL, or 127.0.0.1:6379)")
    if not settings.REDIS_URL:  # configure as llmos_portal.settings does when REDIS_URL is set
        settings.REDIS_URL = url
        settings.CHANNEL_LAYERS = {
            "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [url]}}
        }
    ws = await open_socket(alice_cookie)
    await asyncio.sleep(6)
    await ws.send_json_to({"type": "ping"})
    assert (await ws.receive_json_from())["type"] == "pong"
    await ws.send_json_to(generate(params={"temperature": 0, "max_tokens": 3}))
    events = await events_until_end(ws)
    assert events[0]["type"] == "started" and events[-1]["type"] == "done"


# --- the session is re-checked per generation ----------------------------------------------------


async def _assert_ended(ws) -> None:
    await ws.send_json_to(generate(model="gpt-9"))  # any generate: refused before the model is looked up
    event = await ws.receive_json_from(timeout=5)
    assert event["type"] == "error" and event["code"] == "not_authenticated" and event["status"] == 401
    assert (await ws.receive_output(timeout=5))["code"] == 4401


async def test_a_socket_stops_generating_after_its_session_logs_out(alice_cookie, open_socket):
    from importlib import import_module

    from django.conf import settings as django_settings

    ws = await open_socket(alice_cookie)
    await ws.send_json_to(generate(model="gpt-9"))
    assert (await events_until_end(ws))[-1]["code"] == "model_not_found"  # still signed in
    store = import_module(django_settings.SESSION_ENGINE).SessionStore
    await sync_to_async(store(session_key=alice_cookie).delete)()  # what logout does
    await _assert_ended(ws)


async def test_a_socket_stops_after_the_user_is_deactivated(alice, alice_cookie, open_socket):
    ws = await open_socket(alice_cookie)
    alice.is_active = False
    await sync_to_async(alice.save)()
    await _assert_ended(ws)


async def test_a_socket_stops_after_log_out_everywhere(alice, alice_cookie, bob, open_socket):
    from accounts.services import user_log_out_everywhere
    from tests.playground.conftest import session_cookie

    bobs_ws = await open_socket(await sync_to_async(session_cookie)(bob))
    ws = await open_socket(alice_cookie)
    await sync_to_async(user_log_out_everywhere)(user=alice)
    await _assert_ended(ws)
    await bobs_ws.send_json_to(generate(model="gpt-9"))  # another user's socket is untouched
    assert (await events_until_end(bobs_ws))[-1]["code"] == "model_not_found"


async def test_the_site_ip_rules_close_the_socket_with_4403(alice_cookie):
    from accounts.models import IpRule

    await IpRule.objects.acreate(action="deny", network="198.51.100.0/24", scope="site")
    allowed = communicator(cookie=alice_cookie)
    allowed.scope["client"] = ("203.0.113.5", 50000)  # read when the app first runs, at connect
    assert (await allowed.connect())[0]
    assert (await allowed.receive_json_from(timeout=5))["type"] == "ready"
    await allowed.disconnect()
    ws = communicator(cookie=alice_cookie)
    ws.scope["client"] = ("198.51.100.7", 50000)
    assert (await ws.connect())[0]
    event = await ws.receive_json_from(timeout=5)
    assert event["type"] == "error" and event["code"] == "ip_not_allowed" and event["status"] == 403
    assert (await ws.receive_output(timeout=5))["code"] == 4403
