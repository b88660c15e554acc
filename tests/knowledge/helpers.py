"""A stand-in embedding model (words hashed into 384 dimensions: texts sharing words are close)
and a stand-in chat model, so knowledge base tests run without loading a model."""

from __future__ import annotations

import hashlib
import re

import numpy as np
from asgiref.sync import async_to_sync
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import AsyncClient

from inference.engine.types import EmbeddingResult
from tests.inference.helpers import Result

DIMENSIONS = 384
_WORD = re.compile(r"[a-z0-9]+")
STOP = {"the", "a", "an", "is", "of", "to", "in", "and", "what", "how", "does", "do", "for", "on", "are", "with", "it"}


def fake_vector(text: str) -> list[float]:
    vector = np.zeros(DIMENSIONS, dtype=np.float32)
    for word in _WORD.findall(text.lower()):
        if word in STOP:
            continue
        digest = hashlib.sha256(word.encode()).digest()
        vector[int.from_bytes(digest[:4], "little") % DIMENSIONS] += 1.0
    norm = np.linalg.norm(vector)
    return (vector / norm if norm else vector).tolist()


class FakeModels:
    """Records what was embedded and asked."""

    def __init__(self) -> None:
        self.embedded: list[str] = []
        self.contexts: list[str] = []

    async def embeddings_create(self, *, model: str, texts: list[str], progress=None):
        self.embedded.extend(texts)
        tokens = sum(len(text.split()) for text in texts)
        return EmbeddingResult(vectors=[fake_vector(text) for text in texts], prompt_tokens=tokens)

    async def ask(self, *, model, question, context, max_tokens, check_prompt=None):
        self.contexts.append(context)
        lines = context.split("\n")
        first_passage = lines[1] if len(lines) > 1 else context
        answer = f"From the documents: {first_passage}"
        return {"answer": answer, "model": model, "prompt_tokens": 50, "completion_tokens": 7}


def upload(key: str, data: bytes, name: str, *, purpose: str = "assistants") -> Result:
    async def run() -> Result:
        response = await AsyncClient().post(
            "/v1/files",
            data={"purpose": purpose, "file": SimpleUploadedFile(name, data)},
            headers={"Authorization": f"Bearer {key}"},
        )
        return Result(response.status_code, dict(response.items()), response.content)

    return async_to_sync(run)()


def ingest_all() -> None:
    """Run ingestion for every document waiting (as the background runner would)."""
    from knowledge.ingest import document_ingest
    from knowledge.selectors import unfinished_document_ids

    for document_id in unfinished_document_ids():
        async_to_sync(document_ingest)(document_id=document_id)
