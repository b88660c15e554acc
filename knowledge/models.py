"""Knowledge bases (OpenAI's "vector stores"), their documents (vector store files) and the
documents' chunks with their embeddings.

A chunk's vector is kept in the database (`Chunk.embedding`, float32 bytes) and in the vector
index of the database (knowledge.vector_index): sqlite-vec, pgvector, or a numpy matrix built
from `Chunk.embedding`. `KnowledgeBase.version` grows with every change of its chunks, so cached
matrices are rebuilt when their base changes.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


def new_knowledge_base_id() -> str:
    return f"vs_{secrets.token_hex(12)}"


class KnowledgeBase(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=new_knowledge_base_id, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="knowledge_bases")
    name = models.CharField(max_length=200)
    embedding_model = models.CharField(max_length=200)
    dimensions = models.PositiveIntegerField(default=0)  # set by the first embedded chunk
    version = models.PositiveBigIntegerField(default=0)
    metadata = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_active_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "created_at"])]

    def __str__(self) -> str:
        return f"{self.id} {self.name}"


class Document(models.Model):
    """One file in a knowledge base. Statuses are OpenAI's vector store file statuses; the console
    shows them as processing / ready / failed."""

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", "processing"
        COMPLETED = "completed", "ready"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"

    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="documents")
    # The uploaded file (batches.File, purpose `assistants`); its id is the document's id on /v1.
    file = models.ForeignKey("batches.File", on_delete=models.CASCADE, related_name="documents")
    filename = models.CharField(max_length=255)
    bytes = models.PositiveBigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_PROGRESS)
    error = models.CharField(max_length=500, blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    chunks_total = models.PositiveIntegerField(default=0)
    chunks_done = models.PositiveIntegerField(default=0)
    embedding_tokens = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["knowledge_base", "file"], name="knowledge_document_file_unique")
        ]

    def __str__(self) -> str:
        return f"{self.filename} ({self.status})"

    @property
    def progress_percent(self) -> int:
        if self.status == self.Status.COMPLETED:
            return 100
        return int(100 * self.chunks_done / self.chunks_total) if self.chunks_total else 0


class Chunk(models.Model):
    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="chunks")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    text = models.TextField()
    start = models.PositiveIntegerField(default=0)  # character offsets in the document's text
    end = models.PositiveIntegerField(default=0)
    embedding = models.BinaryField()  # float32, L2-normalised

    class Meta:
        ordering = ["document", "index"]
        constraints = [models.UniqueConstraint(fields=["document", "index"], name="knowledge_chunk_index_unique")]
        indexes = [models.Index(fields=["knowledge_base", "id"])]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.index}"
