"""all-MiniLM-L6-v2 sentence embeddings."""

from __future__ import annotations

import threading

import pytest

from inference.engine.types import InvalidRequest

from .conftest import EMBED

pytestmark = pytest.mark.model


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@pytest.mark.asyncio
async def test_embeddings_are_normalised_384_vectors_and_rank_similarity(manager):
    embedder = await manager.get_embedder(EMBED.name)
    assert embedder.dimensions == 384
    texts = ["A cat sits on the mat.", "A kitten is resting on a rug.", "Quarterly tax filings are due in April."]
    result = await embedder.embed(texts)
    assert len(result.vectors) == 3 and all(len(v) == 384 for v in result.vectors)
    assert all(abs(dot(v, v) - 1.0) < 1e-4 for v in result.vectors)
    cat, kitten, tax = result.vectors
    assert dot(cat, kitten) > dot(cat, tax) + 0.2
    assert result.prompt_tokens > 10


@pytest.mark.asyncio
async def test_long_input_is_truncated_to_model_limit(manager):
    embedder = await manager.get_embedder(EMBED.name)
    assert embedder.context_length == 256
    result = await embedder.embed(["token " * 2000, "short"])
    assert len(result.vectors) == 2
    assert result.prompt_tokens <= 256 + 4


@pytest.mark.asyncio
async def test_empty_input_is_rejected(manager):
    embedder = await manager.get_embedder(EMBED.name)
    with pytest.raises(InvalidRequest):
        await embedder.embed([])


@pytest.mark.asyncio
async def test_each_embedding_runs_on_a_thread_that_has_ended_when_it_returns(manager, monkeypatch):
    """Torch's OpenMP pool lives as long as the thread that made it; a pool left on a long-lived
    thread makes libgomp stop spinning in llama.cpp's team too (see local._on_own_thread)."""
    embedder = await manager.get_embedder(EMBED.name)
    ran_on: list[threading.Thread] = []
    embed_sync = embedder.embed_sync

    def recording(*args):
        ran_on.append(threading.current_thread())
        return embed_sync(*args)

    monkeypatch.setattr(embedder, "embed_sync", recording)
    for text in ("one", "two"):
        assert len((await embedder.embed([text])).vectors) == 1
        ran_on[-1].join(timeout=5)
        assert not ran_on[-1].is_alive()
    assert ran_on[0] is not ran_on[1] and threading.main_thread() not in ran_on
