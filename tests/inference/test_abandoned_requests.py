"""A client that leaves before a non-streamed answer: the ASGI server cancels the view task; the
engine work stops and the tokens used so far are billed (status 200, client_disconnected)."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient

from inference import services
from inference.runtime import current_manager
from usage.models import UsageRecord
from usage.recorder import recorder

CHAT_MODEL = "SmolLM2-135M-Instruct"
EMBED_MODEL = "all-MiniLM-L6-v2"


def flushed_usage() -> list[UsageRecord]:
    recorder().flush()
    return list(UsageRecord.objects.order_by("id"))


async def _post_then_cancel(key: str, path: str, body: dict, *, started: asyncio.Event, after_s: float) -> None:
    client = AsyncClient()
    request = asyncio.ensure_future(
        client.post(
            path, data=json.dumps(body), content_type="application/json", headers={"Authorization": f"Bearer {key}"}
        )
    )
    waiter = asyncio.ensure_future(started.wait())
    await asyncio.wait([request, waiter], timeout=120, return_when=asyncio.FIRST_COMPLETED)
    assert not request.done(), f"answered before the work started: {request.result().content[:300]!r}"
    await asyncio.sleep(after_s)
    request.cancel()  # what Django's ASGI handler does when the client disconnects
    with pytest.raises(asyncio.CancelledError):
        await request


@pytest.mark.model
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
def test_an_abandoned_completion_stops_the_engine_and_bills_what_it_used(owner_key, monkeypatch, path):
    started = asyncio.Event()
    collect = services.generation_collect

    async def watched(generation, primed):
        started.set()
        return await collect(generation, primed)

    monkeypatch.setattr(services, "generation_collect", watched)
    body = {"model": CHAT_MODEL, "max_tokens": 400, "temperature": 0.7, "seed": None}
    body.update({"messages": [{"role": "user", "content": "Tell me a long story."}]} if "chat" in path else {})
    body.update({"prompt": "Once upon a time"} if "chat" not in path else {})

    async def scenario() -> dict:
        await (await current_manager()).get_text_generator(CHAT_MODEL)
        # cancel soon after the first token: a sampled story may reach EOS within a second
        await _post_then_cancel(owner_key, path, body, started=started, after_s=0.2)
        generator = await (await current_manager()).get_text_generator(CHAT_MODEL)
        for _ in range(50):  # the scheduler drops the cancelled sequence at its next step
            if generator.stats()["running"] == 0:
                break
            await asyncio.sleep(0.1)
        return generator.stats()

    stats = async_to_sync(scenario)()
    assert stats["running"] == 0 and stats["queue_depth"] == 0
    (row,) = flushed_usage()
    assert row.status_code == 200 and row.client_disconnected and row.error_code == "client_disconnected"
    assert row.prompt_tokens > 0 and 0 < row.completion_tokens < 400


@pytest.mark.model
def test_an_abandoned_embedding_is_billed_for_what_was_embedded(owner_key, monkeypatch):
    started = asyncio.Event()
    create = services.embeddings_create

    async def watched(**kwargs):
        started.set()
        return await create(**kwargs)

    monkeypatch.setattr(services, "embeddings_create", watched)
    texts = [" ".join(f"w{i}x{j}" for j in range(50)) for i in range(256)]  # under MAX_TEXT_CHARS

    async def scenario() -> None:
        await (await current_manager()).get_embedder(EMBED_MODEL)  # loaded: the cancel lands mid-work
        await _post_then_cancel(
            owner_key, "/v1/embeddings", {"model": EMBED_MODEL, "input": texts}, started=started, after_s=0.5
        )

    async_to_sync(scenario)()
    (row,) = flushed_usage()
    assert row.status_code == 200 and row.client_disconnected and row.endpoint == "embeddings"
    assert 0 < row.prompt_tokens < 256 * 256  # stopped part-way, billed for the batches that ran


def test_an_abandoned_request_is_recorded_as_a_client_disconnect(owner_key, monkeypatch):
    """Without a model: a generation that never ends, cancelled as a disconnect would."""
    started = asyncio.Event()

    async def forever(**kwargs):
        started.set()
        await asyncio.sleep(3600)

    monkeypatch.setattr(services, "embeddings_create", forever)
    monkeypatch.setattr(services, "model_for_caller", _any_model)

    async def scenario() -> None:
        await _post_then_cancel(
            owner_key, "/v1/embeddings", {"model": EMBED_MODEL, "input": "x"}, started=started, after_s=0
        )

    async_to_sync(scenario)()
    (row,) = flushed_usage()
    assert (row.status_code, row.error_code, row.client_disconnected) == (200, "client_disconnected", True)


async def _any_model(name, *, caller, kind):
    from inference.engine.types import ModelSpec

    return ModelSpec(name=name, kind=kind, backend="sentence")
