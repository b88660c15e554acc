"""Nearest-chunk search with one interface over three implementations:

- `SqliteVecIndex`: sqlite-vec's `vec0` virtual table (one per vector size), partitioned by base,
  cosine distance; on SQLite when the extension loads (knowledge.signals loads it).
- `PgVectorIndex`: a pgvector table (one per vector size) with an HNSW index (cosine); on
  PostgreSQL when the server has the `vector` extension.
- `NumpyIndex`: exact search over the vectors kept in `Chunk.embedding`: one float32 matrix per
  base, cached per worker process and rebuilt when the base's `version` changes. Everywhere else
  (PostgreSQL without pgvector), and the reference the other two are tested against.

Vectors are L2-normalised float32; a hit's score is the cosine similarity (higher is closer).
`current_index()` picks one for the database (setting KNOWLEDGE_VECTOR_INDEX, default auto).
Chunks always keep their vector in `Chunk.embedding`, so switching index loses nothing
(`manage.py knowledge_reindex` fills a new one).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections, transaction

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    score: float


def as_matrix(vectors: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Rows of float32, each scaled to length 1 (all-zero rows stay zero)."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


class VectorIndex:
    """Where a database keeps chunk vectors for search. Every method runs on `using`'s connection,
    inside the caller's transaction."""

    name = ""

    def __init__(self, using: str = "default"):
        self.using = using

    def add(self, *, knowledge_base_id: str, chunk_ids: Sequence[int], vectors: np.ndarray) -> None:
        raise NotImplementedError

    def remove(self, *, knowledge_base_id: str, dimensions: int, chunk_ids: Sequence[int] | None = None) -> None:
        """Remove these chunks' vectors, or (chunk_ids None) all of the base's."""
        raise NotImplementedError

    def search(self, *, knowledge_base_id: str, dimensions: int, vector: np.ndarray, limit: int) -> list[Hit]:
        """The `limit` chunks of the base closest to `vector`, best first."""
        raise NotImplementedError


def _table(dimensions: int) -> str:
    if not isinstance(dimensions, int) or not 0 < dimensions <= 8192:
        raise ValueError(f"bad vector size {dimensions!r}")
    return f"knowledge_vec_{dimensions}"


# --- sqlite-vec --------------------------------------------------------------------------------------


class SqliteVecIndex(VectorIndex):
    name = "sqlite-vec"
    MAX_K = 4096  # vec0's limit on k

    def _ensure(self, cursor, dimensions: int) -> str:
        table = _table(dimensions)
        # A read first: the DDL below takes a write lock on the schema, which other connections'
        # readers can hold (shared-cache SQLite fails at once instead of waiting).
        cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = %s", [table])
        if cursor.fetchone() is not None:
            return table
        cursor.execute(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {table} USING vec0("
            "chunk_id INTEGER PRIMARY KEY, knowledge_base_id TEXT PARTITION KEY, "
            f"embedding float[{dimensions}] distance_metric=cosine)"
        )
        return table

    def add(self, *, knowledge_base_id, chunk_ids, vectors):
        if not len(chunk_ids):
            return
        with connections[self.using].cursor() as cursor:
            table = self._ensure(cursor, int(vectors.shape[1]))
            cursor.executemany(
                f"INSERT INTO {table}(chunk_id, knowledge_base_id, embedding) VALUES (%s, %s, %s)",
                [
                    (int(chunk_id), knowledge_base_id, row.astype(np.float32).tobytes())
                    for chunk_id, row in zip(chunk_ids, vectors, strict=True)
                ],
            )

    def remove(self, *, knowledge_base_id, dimensions, chunk_ids=None):
        if not dimensions:
            return
        with connections[self.using].cursor() as cursor:
            table = self._ensure(cursor, dimensions)
            if chunk_ids is None:
                cursor.execute(f"DELETE FROM {table} WHERE knowledge_base_id = %s", [knowledge_base_id])
                return
            ids = [int(i) for i in chunk_ids]
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                cursor.execute(f"DELETE FROM {table} WHERE chunk_id IN ({', '.join(['%s'] * len(part))})", part)

    def search(self, *, knowledge_base_id, dimensions, vector, limit):
        if not dimensions or limit < 1:
            return []
        table = _table(dimensions)
        with connections[self.using].cursor() as cursor:
            # A read: look the table up rather than create it (no write lock on a search).
            cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = %s", [table])
            if cursor.fetchone() is None:
                return []
            cursor.execute(
                f"SELECT chunk_id, distance FROM {table} "
                "WHERE embedding MATCH %s AND k = %s AND knowledge_base_id = %s ORDER BY distance",
                [as_matrix(vector)[0].tobytes(), min(limit, self.MAX_K), knowledge_base_id],
            )
            return [
                Hit(chunk_id=int(chunk_id), score=1.0 - float(distance)) for chunk_id, distance in cursor.fetchall()
            ]


# --- pgvector ----------------------------------------------------------------------------------------


def _pg_vector(row: np.ndarray) -> str:
    return "[" + ",".join(f"{value:.7g}" for value in row.tolist()) + "]"


class PgVectorIndex(VectorIndex):
    name = "pgvector"
    EF_SEARCH = 200  # candidates HNSW considers; more than the largest page of results

    def _ensure(self, cursor, dimensions: int) -> str:
        table = _table(dimensions)
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {table} ("
            "chunk_id bigint PRIMARY KEY REFERENCES knowledge_chunk(id) ON DELETE CASCADE, "
            f"knowledge_base_id varchar(40) NOT NULL, embedding vector({dimensions}) NOT NULL)"
        )
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {table}_hnsw ON {table} USING hnsw (embedding vector_cosine_ops)")
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {table}_base ON {table} (knowledge_base_id)")
        return table

    def add(self, *, knowledge_base_id, chunk_ids, vectors):
        if not len(chunk_ids):
            return
        with connections[self.using].cursor() as cursor:
            table = self._ensure(cursor, int(vectors.shape[1]))
            cursor.executemany(
                f"INSERT INTO {table} (chunk_id, knowledge_base_id, embedding) VALUES (%s, %s, %s::vector)",
                [(int(c), knowledge_base_id, _pg_vector(row)) for c, row in zip(chunk_ids, vectors, strict=True)],
            )

    def remove(self, *, knowledge_base_id, dimensions, chunk_ids=None):
        if not dimensions:
            return
        with connections[self.using].cursor() as cursor:
            table = self._ensure(cursor, dimensions)
            if chunk_ids is None:
                cursor.execute(f"DELETE FROM {table} WHERE knowledge_base_id = %s", [knowledge_base_id])
            else:
                cursor.execute(f"DELETE FROM {table} WHERE chunk_id = ANY(%s)", [[int(i) for i in chunk_ids]])

    def search(self, *, knowledge_base_id, dimensions, vector, limit):
        if not dimensions or limit < 1:
            return []
        literal = _pg_vector(as_matrix(vector)[0])
        table = _table(dimensions)
        with transaction.atomic(using=self.using), connections[self.using].cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s)", [table])
            if cursor.fetchone()[0] is None:
                return []
            cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(max(self.EF_SEARCH, limit))])
            # pgvector >= 0.8: keep scanning the graph until `limit` rows of this base are found.
            cursor.execute("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)")
            cursor.execute(
                f"SELECT chunk_id, 1 - (embedding <=> %s::vector) AS score FROM {table} "
                "WHERE knowledge_base_id = %s ORDER BY embedding <=> %s::vector LIMIT %s",
                [literal, knowledge_base_id, literal, limit],
            )
            hits = [Hit(chunk_id=int(chunk_id), score=float(score)) for chunk_id, score in cursor.fetchall()]
        return sorted(hits, key=lambda hit: -hit.score)


# --- exact search with numpy -------------------------------------------------------------------------


class NumpyIndex(VectorIndex):
    """Exact cosine search over `Chunk.embedding`, one matrix per base held by this process."""

    name = "numpy"
    MAX_CACHED_BASES = 64
    _cache: OrderedDict[tuple[str, str], tuple[int, np.ndarray, np.ndarray]] = OrderedDict()
    _lock = threading.Lock()

    def add(self, *, knowledge_base_id, chunk_ids, vectors):
        """Nothing to do: the vectors are the chunks' own; the base's new version invalidates caches."""

    def remove(self, *, knowledge_base_id, dimensions, chunk_ids=None):
        """Nothing to do (as for add)."""

    @classmethod
    def forget(cls) -> None:
        with cls._lock:
            cls._cache.clear()

    def _matrix(self, knowledge_base_id: str) -> tuple[np.ndarray, np.ndarray]:
        from knowledge.models import Chunk, KnowledgeBase

        version = (
            KnowledgeBase.objects.using(self.using)
            .filter(pk=knowledge_base_id)
            .values_list("version", flat=True)
            .first()
        )
        key = (self.using, knowledge_base_id)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] == version:
                self._cache.move_to_end(key)
                return cached[1], cached[2]
        rows = list(
            Chunk.objects.using(self.using)
            .filter(knowledge_base_id=knowledge_base_id)
            .order_by("id")
            .values_list("id", "embedding")
        )
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        matrix = (
            np.stack([np.frombuffer(bytes(row[1]), dtype=np.float32) for row in rows])
            if rows
            else np.zeros((0, 0), dtype=np.float32)
        )
        if version is not None:
            with self._lock:
                self._cache[key] = (version, ids, matrix)
                while len(self._cache) > self.MAX_CACHED_BASES:
                    self._cache.popitem(last=False)
        return ids, matrix

    def search(self, *, knowledge_base_id, dimensions, vector, limit):
        ids, matrix = self._matrix(knowledge_base_id)
        if not len(ids) or limit < 1:
            return []
        query = as_matrix(vector)[0]
        if query.shape[0] != matrix.shape[1]:
            return []
        scores = matrix @ query
        top = np.argpartition(-scores, limit - 1)[:limit] if limit < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        return [Hit(chunk_id=int(ids[i]), score=float(scores[i])) for i in top]


# --- which one --------------------------------------------------------------------------------------

_pgvector_checked: dict[str, bool] = {}


def sqlite_vec_available(using: str = "default") -> bool:
    connection = connections[using]
    connection.ensure_connection()
    return bool(getattr(connection, "knowledge_sqlite_vec", False))


def pgvector_available(using: str = "default") -> bool:
    """Whether the server has the `vector` extension (created here when it is available and this
    role may create it). Checked once per process and database."""
    connection = connections[using]
    key = f"{using}:{connection.settings_dict.get('NAME')}"
    if key not in _pgvector_checked:
        available = False
        try:
            with transaction.atomic(using=using), connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
                if cursor.fetchone() is not None:
                    cursor.execute("CREATE EXTENSION IF NOT EXISTS vector")
                    available = True
        except DatabaseError as exc:
            logger.warning("pgvector is installed on the server but cannot be enabled: %s", exc)
        _pgvector_checked[key] = available
    return _pgvector_checked[key]


def forget_detection() -> None:
    _pgvector_checked.clear()


def current_index(using: str = "default") -> VectorIndex:
    choice = settings.KNOWLEDGE_VECTOR_INDEX
    vendor = connections[using].vendor
    if choice == "numpy":
        return NumpyIndex(using)
    if choice == "sqlite-vec" or (choice == "auto" and vendor == "sqlite"):
        if vendor == "sqlite" and sqlite_vec_available(using):
            return SqliteVecIndex(using)
        if choice == "sqlite-vec":
            raise ImproperlyConfigured("KNOWLEDGE_VECTOR_INDEX=sqlite-vec, but sqlite-vec cannot be loaded here.")
    if choice == "pgvector" or (choice == "auto" and vendor == "postgresql"):
        if vendor == "postgresql" and pgvector_available(using):
            return PgVectorIndex(using)
        if choice == "pgvector":
            raise ImproperlyConfigured("KNOWLEDGE_VECTOR_INDEX=pgvector, but the server has no `vector` extension.")
    return NumpyIndex(using)
