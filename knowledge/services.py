"""Writes for knowledge bases: create, rename, delete a base; add and remove documents; and the
ingestion steps (knowledge.ingest) that store a document's chunks with their vectors."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from batches.models import File
from inference.registry import enabled_specs
from knowledge.chunking import TextChunk
from knowledge.models import Chunk, Document, KnowledgeBase
from knowledge.vector_index import as_matrix, current_index

MAX_NAME_CHARS = 200


class KnowledgeError(Exception):
    """A request about knowledge bases that cannot be done; `param` names the field at fault."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def _check_embedding_model(name: str) -> str:
    spec = enabled_specs().get(name)
    if spec is None:
        raise KnowledgeError(f"No such model: {name}", param="embedding_model", code="model_not_found")
    if spec.kind != "embedding":
        raise KnowledgeError(f"`{name}` is not an embedding model.", param="embedding_model", code="wrong_model_kind")
    return spec.name


def knowledge_base_create(
    *, user: User, name: str, embedding_model: str | None = None, metadata: dict | None = None
) -> KnowledgeBase:
    model = _check_embedding_model(embedding_model or settings.DEFAULT_EMBEDDING_MODEL)
    return KnowledgeBase.objects.create(
        user=user, name=(name.strip() or "Knowledge base")[:MAX_NAME_CHARS], embedding_model=model, metadata=metadata
    )


def knowledge_base_update(
    *, knowledge_base: KnowledgeBase, name: str | None = None, metadata: dict | None = None
) -> KnowledgeBase:
    fields: list[str] = []
    if name is not None:
        knowledge_base.name = (name.strip() or knowledge_base.name)[:MAX_NAME_CHARS]
        fields.append("name")
    if metadata is not None:
        knowledge_base.metadata = metadata
        fields.append("metadata")
    if fields:
        knowledge_base.save(update_fields=fields)
    return knowledge_base


@transaction.atomic
def knowledge_base_delete(*, knowledge_base: KnowledgeBase) -> None:
    """The base, its documents and chunks, and their vectors (knowledge.signals). Uploaded files stay."""
    knowledge_base.delete()


@transaction.atomic
def knowledge_document_add(*, knowledge_base: KnowledgeBase, file: File) -> Document:
    """Add an uploaded file (purpose `assistants`) to the base; it is ingested off the request
    path once this commits. Adding a file that is already there returns its document."""
    if file.user_id != knowledge_base.user_id or file.purpose != File.Purpose.ASSISTANTS:
        raise KnowledgeError(
            f"No such file: {file.pk}. Upload documents with purpose 'assistants'.", param="file_id", code="not_found"
        )
    existing = Document.objects.filter(knowledge_base=knowledge_base, file=file).first()
    if existing is not None:
        return existing
    document = Document.objects.create(
        knowledge_base=knowledge_base, file=file, filename=file.filename, bytes=file.bytes
    )
    KnowledgeBase.objects.filter(pk=knowledge_base.pk).update(last_active_at=timezone.now())
    transaction.on_commit(lambda: _enqueue(document.pk))
    return document


def _enqueue(document_id: int) -> None:
    from batches import dispatch

    dispatch.document_enqueue(document_id=document_id)


@transaction.atomic
def knowledge_document_delete(*, document: Document) -> None:
    """Remove the document and its chunks and vectors from its base (the uploaded file stays)."""
    document.delete()


# --- ingestion steps (knowledge.ingest), each in one transaction -----------------------------------


def knowledge_document_start(*, document_id: int, chunks_total: int) -> bool:
    """Mark a document as being ingested with this many chunks; False when it is gone or done."""
    return bool(
        Document.objects.filter(pk=document_id, status=Document.Status.IN_PROGRESS).update(
            chunks_total=chunks_total, chunks_done=0
        )
    )


def knowledge_document_progress(*, document_id: int, chunks_done: int) -> bool:
    """Record progress; False when the document is no longer being ingested (deleted)."""
    return bool(
        Document.objects.filter(pk=document_id, status=Document.Status.IN_PROGRESS).update(chunks_done=chunks_done)
    )


def knowledge_document_fail(*, document_id: int, error: str, code: str = "server_error") -> None:
    Document.objects.filter(pk=document_id, status=Document.Status.IN_PROGRESS).update(
        status=Document.Status.FAILED, error=error[:500], error_code=code[:32], finished_at=timezone.now()
    )


def knowledge_document_store(
    *, document_id: int, chunks: Sequence[TextChunk], vectors: np.ndarray, tokens: int
) -> Document | None:
    """Store the document's chunks and their vectors (database row and vector index) and mark it
    ready, all at once; the base's version moves on so cached matrices are rebuilt. None when the
    document was deleted meanwhile. Raises KnowledgeError when the vectors' size is not the base's."""
    vectors = as_matrix(vectors)
    with transaction.atomic():
        document = Document.objects.select_for_update().filter(pk=document_id).first()
        if document is None or document.status != Document.Status.IN_PROGRESS:
            return None
        base = KnowledgeBase.objects.select_for_update().get(pk=document.knowledge_base_id)
        dimensions = int(vectors.shape[1]) if len(chunks) else base.dimensions
        if base.dimensions and dimensions != base.dimensions:
            raise KnowledgeError(
                f"The embedding model returned {dimensions}-dimensional vectors; this base holds {base.dimensions}."
            )
        index = current_index()
        old = list(document.chunks.values_list("id", flat=True))  # a run that died half-way
        if old:
            index.remove(knowledge_base_id=base.pk, dimensions=base.dimensions, chunk_ids=old)
            Chunk.objects.filter(pk__in=old).delete()
        created = Chunk.objects.bulk_create(
            Chunk(
                knowledge_base=base,
                document=document,
                index=chunk.index,
                text=chunk.text,
                start=chunk.start,
                end=chunk.end,
                embedding=row.tobytes(),
            )
            for chunk, row in zip(chunks, vectors, strict=True)
        )
        chunk_ids = [chunk.pk for chunk in created]
        if any(chunk_id is None for chunk_id in chunk_ids):  # bulk_create without RETURNING
            chunk_ids = list(document.chunks.order_by("index").values_list("id", flat=True))
        index.add(knowledge_base_id=base.pk, chunk_ids=chunk_ids, vectors=vectors)
        KnowledgeBase.objects.filter(pk=base.pk).update(
            dimensions=dimensions, version=F("version") + 1, last_active_at=timezone.now()
        )
        document.status, document.finished_at = Document.Status.COMPLETED, timezone.now()
        document.chunks_total = document.chunks_done = len(chunks)
        document.embedding_tokens = tokens
        document.error = document.error_code = ""
        document.save(
            update_fields=[
                "status",
                "finished_at",
                "chunks_total",
                "chunks_done",
                "embedding_tokens",
                "error",
                "error_code",
            ]
        )
    return document
