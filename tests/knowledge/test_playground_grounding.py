"""A playground chat grounded on a knowledge base: the passages go to the model, the page gets
them in a `citations` event under the answer; someone else's base is not found."""

from __future__ import annotations

import numpy as np
import pytest
from asgiref.sync import sync_to_async

from batches.models import File
from inference import services as inference_services
from inference.engine.types import GenerationRequest, TextDelta
from knowledge import services
from knowledge.chunking import TextChunk
from knowledge.models import Document, KnowledgeBase
from tests.knowledge.helpers import FakeModels, fake_vector
from tests.playground.conftest import CHAT_MODEL

pytestmark = pytest.mark.django_db(transaction=True)

PASSAGES = [
    "The warranty on every laptop lasts two years and covers the battery.",
    "Our office is open from nine to five on weekdays.",
]


def _base_for(user) -> KnowledgeBase:
    base = services.knowledge_base_create(user=user, name="Handbook")
    file = File.objects.create(user=user, filename="handbook.txt", purpose="assistants", bytes=10, data=b"x")
    document = Document.objects.create(knowledge_base=base, file=file, filename="handbook.txt", bytes=10)
    chunks = [TextChunk(index=i, text=text, start=0, end=len(text)) for i, text in enumerate(PASSAGES)]
    vectors = np.asarray([fake_vector(text) for text in PASSAGES], dtype=np.float32)
    services.knowledge_document_store(document_id=document.pk, chunks=chunks, vectors=vectors, tokens=20)
    return base


@pytest.fixture
def engine(monkeypatch) -> list[GenerationRequest]:
    """Stand-in models: embeddings from FakeModels, and a chat model that answers "ok"."""
    seen: list[GenerationRequest] = []
    monkeypatch.setattr(inference_services, "embeddings_create", FakeModels().embeddings_create)

    async def generation_start(*, model, request, n, check_prompt=None):
        seen.append(request)

        async def rest():
            return
            yield

        first = TextDelta(text="ok", prompt_tokens=5, completion_tokens=1, finish_reason="stop")
        return inference_services.Generation(prompt_tokens=5, completion_tokens=[0]), [(first, rest())]

    monkeypatch.setattr(inference_services, "generation_start", generation_start)
    return seen


def _generate(base_id: str, question: str) -> dict:
    return {
        "type": "generate",
        "mode": "chat",
        "model": CHAT_MODEL,
        "messages": [{"role": "user", "content": question}],
        "system": "Be brief.",
        "knowledge_base": base_id,
    }


async def _events(ws) -> list[dict]:
    events = []
    while not events or events[-1]["type"] not in {"done", "stopped", "error"}:
        events.append(await ws.receive_json_from(timeout=20))
    return events


async def test_a_grounded_chat_sends_the_passages_and_shows_citations(alice, alice_cookie, open_socket, engine):
    base = await sync_to_async(_base_for)(alice)
    ws = await open_socket(alice_cookie)
    await ws.send_json_to(_generate(base.pk, "How long is the laptop warranty?"))
    events = await _events(ws)
    assert [event["type"] for event in events] == ["started", "citations", "token", "done"]
    citations = events[1]
    assert citations["found"] is True and citations["knowledge_base"] == base.pk
    assert citations["citations"][0]["text"] == PASSAGES[0] and citations["citations"][0]["document"] == "handbook.txt"
    system = engine[0].messages[0]
    assert system["role"] == "system" and system["content"].startswith("Be brief.") and PASSAGES[0] in system["content"]


async def test_a_question_the_base_cannot_answer_is_said_to_be_missing(alice, alice_cookie, open_socket, engine):
    base = await sync_to_async(_base_for)(alice)
    ws = await open_socket(alice_cookie)
    await ws.send_json_to(_generate(base.pk, "Which planets have rings?"))
    events = await _events(ws)
    assert events[1] == {"type": "citations", "knowledge_base": base.pk, "found": False, "citations": []}
    assert "not in the knowledge base" in engine[0].messages[0]["content"]


async def test_another_users_knowledge_base_is_not_found(alice, bob, alice_cookie, open_socket, engine):
    bobs = await sync_to_async(_base_for)(bob)
    ws = await open_socket(alice_cookie)
    await ws.send_json_to(_generate(bobs.pk, "How long is the laptop warranty?"))
    (event,) = await _events(ws)
    assert (event["code"], event["status"], event["param"]) == ("not_found", 404, "knowledge_base")
    assert engine == []


async def test_completion_mode_cannot_be_grounded(alice_cookie, open_socket, engine):
    ws = await open_socket(alice_cookie)
    await ws.send_json_to(
        {"type": "generate", "mode": "completion", "model": CHAT_MODEL, "prompt": "x", "knowledge_base": "vs_1"}
    )
    (event,) = await _events(ws)
    assert event["status"] == 400 and event["param"] == "knowledge_base"
