"""Reads for knowledge bases; every read is scoped to its owner."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from django.db.models import Count, Q, Sum

from accounts.models import User
from batches.models import File
from knowledge.models import Chunk, Document, KnowledgeBase
from knowledge.vector_index import current_index

# Ids are `vs_...` and `file-...`: anything else (NUL characters, which PostgreSQL refuses in a
# query, included) is not found without asking the database.
_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")


def _plausible(object_id: str) -> bool:
    return bool(_ID.fullmatch(object_id))


def knowledge_base_for_user(*, user: User, knowledge_base_id: str) -> KnowledgeBase | None:
    if not _plausible(knowledge_base_id):
        return None
    return KnowledgeBase.objects.filter(user=user, pk=knowledge_base_id).first()


def _with_counts(bases):
    return bases.annotate(
        documents_total=Count("documents", distinct=True),
        documents_ready=Count("documents", filter=Q(documents__status=Document.Status.COMPLETED), distinct=True),
        documents_processing=Count("documents", filter=Q(documents__status=Document.Status.IN_PROGRESS), distinct=True),
        documents_failed=Count("documents", filter=Q(documents__status=Document.Status.FAILED), distinct=True),
        documents_cancelled=Count("documents", filter=Q(documents__status=Document.Status.CANCELLED), distinct=True),
        bytes_total=Sum("documents__bytes"),
    )


def knowledge_base_with_counts(*, user: User, knowledge_base_id: str) -> KnowledgeBase | None:
    if not _plausible(knowledge_base_id):
        return None
    return _with_counts(KnowledgeBase.objects.filter(user=user, pk=knowledge_base_id)).first()


def knowledge_bases_for_user(
    *, user: User, after: str | None = None, limit: int = 20
) -> tuple[list[KnowledgeBase], bool]:
    """A page of the user's bases (with document counts), newest first, after the base `after`."""
    bases = _with_counts(KnowledgeBase.objects.filter(user=user)).order_by("-created_at", "-pk")
    if after and _plausible(after):
        anchor = KnowledgeBase.objects.filter(user=user, pk=after).values_list("created_at", flat=True).first()
        if anchor is not None:
            bases = bases.filter(created_at__lt=anchor)
    page = list(bases[: limit + 1])
    return page[:limit], len(page) > limit


def documents_for_base(*, knowledge_base: KnowledgeBase, status: str | None = None, limit: int = 100) -> list[Document]:
    documents = Document.objects.filter(knowledge_base=knowledge_base).order_by("-created_at", "-pk")
    if status:
        documents = documents.filter(status=status)
    return list(documents[:limit])


def document_for_base(*, knowledge_base: KnowledgeBase, file_id: str) -> Document | None:
    if not _plausible(file_id):
        return None
    return Document.objects.filter(knowledge_base=knowledge_base, file_id=file_id).first()


def document_for_user(*, user: User, document_id: int) -> Document | None:
    return Document.objects.filter(knowledge_base__user=user, pk=document_id).select_related("knowledge_base").first()


def assistants_bytes_for_user(*, user: User) -> int:
    """What the user's documents (files with purpose `assistants`) take, against the plan's quota."""
    return File.objects.filter(user=user, purpose=File.Purpose.ASSISTANTS).aggregate(total=Sum("bytes"))["total"] or 0


def document_text(*, document: Document) -> tuple[str, bytes]:
    """(filename, bytes) of the document's uploaded file."""
    file = File.objects.only("filename", "data", "content").get(pk=document.file_id)
    data = bytes(file.data) if file.data is not None else file.content.encode()
    return file.filename, data


def unfinished_document_ids() -> list[int]:
    return list(
        Document.objects.filter(status=Document.Status.IN_PROGRESS).order_by("created_at").values_list("pk", flat=True)
    )


@dataclass(frozen=True)
class SearchResult:
    chunk: Chunk
    score: float


def chunks_search(
    *, knowledge_base: KnowledgeBase, vector: np.ndarray | list[float], limit: int, score_threshold: float = 0.0
) -> list[SearchResult]:
    """The base's chunks nearest to `vector` (the query embedded with the base's model), best
    first, scoring at least `score_threshold`, with their documents."""
    if not knowledge_base.dimensions:
        return []
    hits = current_index().search(
        knowledge_base_id=knowledge_base.pk,
        dimensions=knowledge_base.dimensions,
        vector=np.asarray(vector, dtype=np.float32),
        limit=limit,
    )
    hits = [hit for hit in hits if hit.score >= score_threshold]
    chunks = Chunk.objects.filter(knowledge_base=knowledge_base, pk__in=[hit.chunk_id for hit in hits]).select_related(
        "document"
    )
    by_id = {chunk.pk: chunk for chunk in chunks}
    return [SearchResult(chunk=by_id[hit.chunk_id], score=hit.score) for hit in hits if hit.chunk_id in by_id]
