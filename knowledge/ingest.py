"""Ingesting a document off the request path: text out of the file, overlapping chunks, their
embeddings (metered as one request of endpoint `knowledge.ingest` for the base's owner, so plan
limits and budgets apply), then chunks and vectors stored and the document marked ready, at once.

Progress (`chunks_done` of `chunks_total`) is written after each batch of embeddings. A document
deleted meanwhile stops the work at the next batch. A run that dies is run again at the next start
(batches.dispatch.resume_active_batches) or by the broker; storing replaces any partial chunks.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np
from asgiref.sync import sync_to_async
from django.conf import settings

from accounts.caller import Caller
from accounts.selectors import user_with_plan
from inference import services as inference
from inference.errors import ApiError
from knowledge import selectors, services
from knowledge.chunking import TextChunk, chunk_text
from knowledge.models import Document
from knowledge.parsing import DocumentError, extract_text
from usage.metering import LimitExceeded, metered

logger = logging.getLogger(__name__)

EMBED_BATCH = 32  # chunks per embedding call: progress moves after each
MAX_WAITS = 30  # rate-limited or overloaded: wait and try again this many times, then fail
MAX_WAIT_SECONDS = 10.0


def _load(document_id: int) -> tuple[Document, Caller] | None:
    document = Document.objects.select_related("knowledge_base").filter(pk=document_id).first()
    if document is None or document.status != Document.Status.IN_PROGRESS:
        return None
    user = user_with_plan(user_id=document.knowledge_base.user_id)
    return document, Caller.for_user(user)


def _split(filename: str, data: bytes) -> list[TextChunk]:
    text = extract_text(filename=filename, data=data)
    return chunk_text(text, max_chars=settings.KNOWLEDGE_CHUNK_CHARS, overlap=settings.KNOWLEDGE_CHUNK_OVERLAP)


async def _embed(document: Document, caller: Caller, chunks: list[TextChunk]) -> tuple[np.ndarray, int] | None:
    """Every chunk's vector and the tokens embedded, in one metered request; None when the
    document was deleted meanwhile."""
    model = document.knowledge_base.embedding_model
    async with metered("knowledge.ingest", request_id=f"ingest-{document.pk}", caller=caller) as meter:
        await meter.admit()
        meter.model = model
        spec = await inference.model_for_caller(model, caller=caller, kind="embedding")
        rows: list[list[float]] = []
        for start in range(0, len(chunks), EMBED_BATCH):
            batch = [chunk.text for chunk in chunks[start : start + EMBED_BATCH]]
            result = await inference.embeddings_create(model=spec.name, texts=batch)
            meter.prompt_tokens += result.prompt_tokens
            rows.extend(result.vectors)
            still_there = await sync_to_async(services.knowledge_document_progress)(
                document_id=document.pk, chunks_done=len(rows)
            )
            if not still_there:
                return None
        meter.first_token()
        return np.asarray(rows, dtype=np.float32), meter.prompt_tokens


async def document_ingest(*, document_id: int) -> Document | None:
    """Ingest one document; the document ends ready or failed (with a reason). Safe to run again."""
    loaded = await sync_to_async(_load)(document_id)
    if loaded is None:
        return None
    document, caller = loaded
    try:
        filename, data = await sync_to_async(selectors.document_text)(document=document)
        chunks = await sync_to_async(_split, thread_sensitive=False)(filename, data)  # CPU only, no database
    except DocumentError as exc:
        await sync_to_async(services.knowledge_document_fail)(
            document_id=document_id, error=str(exc), code="unsupported_file"
        )
        return None
    if not await sync_to_async(services.knowledge_document_start)(document_id=document_id, chunks_total=len(chunks)):
        return None
    for attempt in range(MAX_WAITS + 1):
        try:
            embedded = await _embed(document, caller, chunks)
            break
        except LimitExceeded as exc:
            if exc.code in ("rate_limit_exceeded", "concurrency_limit_exceeded") and attempt < MAX_WAITS:
                await asyncio.sleep(min(float(exc.headers.get("Retry-After", "1")), MAX_WAIT_SECONDS))
                continue
            await sync_to_async(services.knowledge_document_fail)(
                document_id=document_id, error=exc.message, code=exc.code
            )
            return None
        except ApiError as exc:
            if exc.status == 503 and attempt < MAX_WAITS:
                await asyncio.sleep(min(float(exc.headers.get("Retry-After", "1")), MAX_WAIT_SECONDS))
                continue
            await sync_to_async(services.knowledge_document_fail)(
                document_id=document_id, error=exc.message, code=exc.code or exc.type
            )
            return None
        except Exception:
            logger.exception("document %s: embedding failed", document_id)
            await sync_to_async(services.knowledge_document_fail)(
                document_id=document_id, error="The server had an error while embedding this document."
            )
            return None
    if embedded is None:
        return None
    vectors, tokens = embedded
    try:
        return await sync_to_async(services.knowledge_document_store)(
            document_id=document_id, chunks=chunks, vectors=vectors, tokens=tokens
        )
    except services.KnowledgeError as exc:
        await sync_to_async(services.knowledge_document_fail)(
            document_id=document_id, error=exc.message, code="wrong_dimensions"
        )
        return None
