"""OpenAI's shapes for vector stores, vector store files and search results."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings

from knowledge.models import Document, KnowledgeBase
from knowledge.selectors import SearchResult

# OpenAI's `last_error.code` values; other reasons keep their message under `server_error`.
LAST_ERROR_CODES = {"server_error", "unsupported_file", "invalid_file"}


def _ts(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def vector_store_object(base: KnowledgeBase) -> dict:
    """`base` comes from a selector that annotates document counts and bytes."""
    counts = {
        "in_progress": getattr(base, "documents_processing", 0) or 0,
        "completed": getattr(base, "documents_ready", 0) or 0,
        "failed": getattr(base, "documents_failed", 0) or 0,
        "cancelled": getattr(base, "documents_cancelled", 0) or 0,
        "total": getattr(base, "documents_total", 0) or 0,
    }
    return {
        "id": base.pk,
        "object": "vector_store",
        "created_at": _ts(base.created_at),
        "name": base.name,
        "usage_bytes": getattr(base, "bytes_total", 0) or 0,
        "file_counts": counts,
        "status": "in_progress" if counts["in_progress"] else "completed",
        "expires_after": None,
        "expires_at": None,
        "last_active_at": _ts(base.last_active_at),
        "metadata": base.metadata or {},
        "embedding_model": base.embedding_model,
    }


def _chunking_strategy() -> dict:
    # Sizes are in characters here (chunks of whole sentences), stated as OpenAI's static strategy.
    return {
        "type": "static",
        "static": {
            "max_chunk_size_tokens": settings.KNOWLEDGE_CHUNK_CHARS // 4,
            "chunk_overlap_tokens": settings.KNOWLEDGE_CHUNK_OVERLAP // 4,
        },
    }


def vector_store_file_object(document: Document) -> dict:
    last_error = None
    if document.status == Document.Status.FAILED:
        code = document.error_code if document.error_code in LAST_ERROR_CODES else "server_error"
        last_error = {"code": code, "message": document.error}
    return {
        "id": document.file_id,
        "object": "vector_store.file",
        "usage_bytes": document.bytes,
        "created_at": _ts(document.created_at),
        "vector_store_id": document.knowledge_base_id,
        "status": document.status,
        "last_error": last_error,
        "chunking_strategy": _chunking_strategy(),
        "attributes": {},
        "filename": document.filename,
        "chunks_total": document.chunks_total,
        "chunks_done": document.chunks_done,
    }


def search_result(result: SearchResult) -> dict:
    chunk = result.chunk
    return {
        "file_id": chunk.document.file_id,
        "filename": chunk.document.filename,
        "score": round(result.score, 6),
        "attributes": {},
        "content": [{"type": "text", "text": chunk.text}],
        "chunk_id": chunk.pk,
        "chunk_index": chunk.index,
    }


def citation(result: SearchResult) -> dict:
    chunk = result.chunk
    return {
        "document": chunk.document.filename,
        "file_id": chunk.document.file_id,
        "chunk_id": chunk.pk,
        "chunk_index": chunk.index,
        "score": round(result.score, 6),
        "text": chunk.text,
    }
