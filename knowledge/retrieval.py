"""Answers from a knowledge base: embed the question with the base's model, find the nearest
chunks, and have the chat model answer from them, with citations. Plain async functions; the
caller's request meter covers the generation, and the question's embedding is recorded as its
own usage row (endpoint `knowledge.query`) for the same caller."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from asgiref.sync import sync_to_async
from django.conf import settings

from accounts.caller import Caller
from inference import services as inference
from inference import tasks
from knowledge import formats, selectors
from knowledge.models import KnowledgeBase
from knowledge.selectors import SearchResult
from usage.metering import RequestMeter, metered

DEFAULT_PASSAGES = 4
NOT_FOUND_ANSWER = "I could not find the answer to this question in the knowledge base \u201c{name}\u201d."


async def query_vector(*, knowledge_base: KnowledgeBase, caller: Caller, text: str) -> tuple[np.ndarray, int]:
    """The text embedded with the base's model (which the caller must be allowed to use)."""
    spec = await inference.model_for_caller(knowledge_base.embedding_model, caller=caller, kind="embedding")
    result = await inference.embeddings_create(model=spec.name, texts=[text])
    return np.asarray(result.vectors[0], dtype=np.float32), result.prompt_tokens


async def search(
    *,
    knowledge_base: KnowledgeBase,
    caller: Caller,
    query: str,
    limit: int,
    score_threshold: float,
    meter: RequestMeter,
) -> list[SearchResult]:
    """The nearest chunks to `query`; the embedding is billed on `meter` (the search request)."""
    meter.model = knowledge_base.embedding_model
    if not knowledge_base.dimensions:
        return []  # nothing ingested yet: no need to embed the query
    vector, tokens = await query_vector(knowledge_base=knowledge_base, caller=caller, text=query)
    meter.prompt_tokens += tokens
    return await sync_to_async(selectors.chunks_search)(
        knowledge_base=knowledge_base, vector=vector, limit=limit, score_threshold=score_threshold
    )


async def search_for_answer(
    *, knowledge_base: KnowledgeBase, caller: Caller, question: str, limit: int = DEFAULT_PASSAGES, request_id: str = ""
) -> list[SearchResult]:
    """The passages to answer from (at least KNOWLEDGE_MIN_SCORE), the question's embedding
    recorded as its own usage row. The caller was admitted by the request this serves."""
    async with metered("knowledge.query", request_id=request_id, caller=caller) as meter:
        return await search(
            knowledge_base=knowledge_base,
            caller=caller,
            query=question,
            limit=limit,
            score_threshold=settings.KNOWLEDGE_MIN_SCORE,
            meter=meter,
        )


def context_from(results: list[SearchResult]) -> str:
    return "\n\n".join(
        f"[{number}] (from {result.chunk.document.filename})\n{result.chunk.text}"
        for number, result in enumerate(results, start=1)
    )


@dataclass(frozen=True)
class GroundedAnswer:
    answer: str
    found: bool
    citations: list[dict]
    prompt_tokens: int
    completion_tokens: int


async def ask(
    *,
    knowledge_base: KnowledgeBase,
    caller: Caller,
    model: str,
    question: str,
    max_tokens: int,
    check_prompt=None,
    passages: int = DEFAULT_PASSAGES,
    request_id: str = "",
    context: str = "",
) -> GroundedAnswer:
    """Answer from the base's nearest passages (and `context`, text the caller pasted, if any);
    when nothing is relevant and nothing was pasted, say so without generating."""
    results = await search_for_answer(
        knowledge_base=knowledge_base, caller=caller, question=question, limit=passages, request_id=request_id
    )
    if not results and not context:
        return GroundedAnswer(
            answer=NOT_FOUND_ANSWER.format(name=knowledge_base.name),
            found=False,
            citations=[],
            prompt_tokens=0,
            completion_tokens=0,
        )
    combined = "\n\n".join(part for part in (context_from(results), context) if part)
    answer = await tasks.ask(
        model=model, question=question, context=combined, max_tokens=max_tokens, check_prompt=check_prompt
    )
    return GroundedAnswer(
        answer=answer["answer"],
        found=bool(results),
        citations=[formats.citation(result) for result in results],
        prompt_tokens=answer["prompt_tokens"],
        completion_tokens=answer["completion_tokens"],
    )
