"""One query interface over three vector indexes: sqlite-vec (SQLite), pgvector with HNSW
(PostgreSQL with the `vector` extension) and exact numpy search; each agrees with brute force,
sees only its own base, and forgets deleted vectors."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection

from batches.models import File
from knowledge import services
from knowledge.chunking import TextChunk
from knowledge.models import Chunk, Document, KnowledgeBase
from knowledge.vector_index import (
    NumpyIndex,
    PgVectorIndex,
    SqliteVecIndex,
    as_matrix,
    current_index,
    pgvector_available,
)

DIM = 384


def _base(user, name: str = "base") -> KnowledgeBase:
    return KnowledgeBase.objects.create(user=user, name=name, embedding_model="all-MiniLM-L6-v2")


def _document(base: KnowledgeBase, vectors: np.ndarray, name: str = "doc.txt") -> Document:
    file = File.objects.create(user=base.user, filename=name, purpose=File.Purpose.ASSISTANTS, bytes=3, data=b"abc")
    document = Document.objects.create(knowledge_base=base, file=file, filename=name, bytes=3)
    chunks = [TextChunk(index=i, text=f"chunk {i}", start=i, end=i + 1) for i in range(len(vectors))]
    stored = services.knowledge_document_store(
        document_id=document.pk, chunks=chunks, vectors=vectors, tokens=len(chunks)
    )
    assert stored is not None
    return stored


def _index_kinds():
    kinds = [NumpyIndex]
    if connection.vendor == "sqlite":
        kinds.append(SqliteVecIndex)
    return kinds


def _brute_force(base: KnowledgeBase, query: np.ndarray, k: int) -> list[int]:
    rows = list(Chunk.objects.filter(knowledge_base=base).values_list("id", "embedding"))
    scores = [(float(np.frombuffer(bytes(e), dtype=np.float32) @ as_matrix(query)[0]), i) for i, e in rows]
    return [i for _, i in sorted(scores, reverse=True)[:k]]


def test_the_default_index_on_sqlite_is_sqlite_vec(db, settings):
    if connection.vendor != "sqlite":
        pytest.skip("the test database is not SQLite")
    settings.KNOWLEDGE_VECTOR_INDEX = "auto"
    assert current_index().name == "sqlite-vec"


@pytest.mark.parametrize("index_name", ["numpy", "sqlite-vec"])
def test_search_agrees_with_brute_force_and_stays_in_its_base(owner, other_user, settings, index_name):
    if index_name == "sqlite-vec" and connection.vendor != "sqlite":
        pytest.skip("sqlite-vec runs on SQLite only")
    settings.KNOWLEDGE_VECTOR_INDEX = index_name
    rng = np.random.default_rng(7)
    mine, theirs = _base(owner), _base(other_user, "theirs")
    _document(mine, rng.normal(size=(60, DIM)).astype(np.float32))
    _document(mine, rng.normal(size=(40, DIM)).astype(np.float32), "second.txt")
    _document(theirs, rng.normal(size=(50, DIM)).astype(np.float32))
    mine.refresh_from_db()
    index = current_index()
    assert index.name == index_name
    for _ in range(5):
        query = rng.normal(size=DIM).astype(np.float32)
        hits = index.search(knowledge_base_id=mine.pk, dimensions=DIM, vector=query, limit=5)
        assert [hit.chunk_id for hit in hits] == _brute_force(mine, query, 5)
        assert set(
            Chunk.objects.filter(pk__in=[h.chunk_id for h in hits]).values_list("knowledge_base", flat=True)
        ) == {mine.pk}
        assert hits[0].score >= hits[-1].score


@pytest.mark.parametrize("index_name", ["numpy", "sqlite-vec"])
def test_deleted_documents_and_bases_leave_the_index(owner, settings, index_name):
    if index_name == "sqlite-vec" and connection.vendor != "sqlite":
        pytest.skip("sqlite-vec runs on SQLite only")
    settings.KNOWLEDGE_VECTOR_INDEX = index_name
    rng = np.random.default_rng(3)
    base = _base(owner)
    first = _document(base, rng.normal(size=(10, DIM)).astype(np.float32))
    second = _document(base, rng.normal(size=(10, DIM)).astype(np.float32), "b.txt")
    base.refresh_from_db()
    index = current_index()
    query = rng.normal(size=DIM).astype(np.float32)
    assert len(index.search(knowledge_base_id=base.pk, dimensions=DIM, vector=query, limit=50)) == 20
    first_chunks = set(first.chunks.values_list("id", flat=True))
    services.knowledge_document_delete(document=first)
    hits = index.search(knowledge_base_id=base.pk, dimensions=DIM, vector=query, limit=50)
    assert len(hits) == 10 and not first_chunks & {hit.chunk_id for hit in hits}
    if index_name == "sqlite-vec":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM knowledge_vec_{DIM}")
            assert cursor.fetchone()[0] == 10  # the vectors themselves are gone, not just filtered
    services.knowledge_base_delete(knowledge_base=base)
    assert index.search(knowledge_base_id=base.pk, dimensions=DIM, vector=query, limit=50) == []
    assert not Chunk.objects.filter(document=second).exists()
    if index_name == "sqlite-vec":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM knowledge_vec_{DIM}")
            assert cursor.fetchone()[0] == 0


def test_the_numpy_matrix_is_cached_until_the_base_changes(owner, settings, django_assert_num_queries):
    settings.KNOWLEDGE_VECTOR_INDEX = "numpy"
    NumpyIndex.forget()
    rng = np.random.default_rng(5)
    base = _base(owner)
    _document(base, rng.normal(size=(8, DIM)).astype(np.float32))
    index = NumpyIndex()
    query = rng.normal(size=DIM).astype(np.float32)
    assert len(index.search(knowledge_base_id=base.pk, dimensions=DIM, vector=query, limit=20)) == 8
    with django_assert_num_queries(1):  # the base's version only: the matrix is reused
        index.search(knowledge_base_id=base.pk, dimensions=DIM, vector=query, limit=20)
    _document(base, rng.normal(size=(4, DIM)).astype(np.float32), "more.txt")
    assert len(index.search(knowledge_base_id=base.pk, dimensions=DIM, vector=query, limit=20)) == 12


def test_pgvector_hnsw_search_agrees_with_exact_search(owner, settings):
    if connection.vendor != "postgresql":
        pytest.skip("pgvector needs PostgreSQL (run with DATABASE_URL=postgres://...)")
    if not pgvector_available():
        pytest.skip("this PostgreSQL server has no `vector` extension (Debian 12's packages lack it)")
    settings.KNOWLEDGE_VECTOR_INDEX = "pgvector"
    rng = np.random.default_rng(11)
    base = _base(owner)
    _document(base, rng.normal(size=(200, DIM)).astype(np.float32))
    base.refresh_from_db()
    index = current_index()
    assert isinstance(index, PgVectorIndex)
    hits_found = 0
    for _ in range(5):
        query = rng.normal(size=DIM).astype(np.float32)
        hits = index.search(knowledge_base_id=base.pk, dimensions=DIM, vector=query, limit=5)
        exact = _brute_force(base, query, 5)
        hits_found += len({hit.chunk_id for hit in hits} & set(exact))
    assert hits_found >= 23  # HNSW is approximate: at least 92% of the exact top 5


def test_a_missing_sqlite_vec_is_a_system_check_warning(monkeypatch, settings):
    from knowledge import checks

    settings.KNOWLEDGE_VECTOR_INDEX = "auto"
    if connection.vendor != "sqlite":
        assert checks.sqlite_vec_loadable(None) == []
        return
    assert checks.sqlite_vec_loadable(None) == []
    monkeypatch.setattr(checks.importlib.util, "find_spec", lambda name: None)
    (warning,) = checks.sqlite_vec_loadable(None)
    assert warning.id == "knowledge.W001" and "not installed" in warning.msg
