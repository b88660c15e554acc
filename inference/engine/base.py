"""Backend interfaces the Django layer programs against."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator

from .types import EmbeddingResult, EmbedProgress, GenerationRequest, TextDelta


class TextGenerator(ABC):
    """A chat/completion model: in-process (transformers) or an upstream server."""

    name: str
    context_length: int

    @abstractmethod
    def stream(self, request: GenerationRequest) -> AsyncGenerator[TextDelta, None]:
        """Async generator of text deltas; the last one carries finish_reason."""

    @abstractmethod
    def count_prompt_tokens(self, request: GenerationRequest) -> int: ...

    async def generate(self, request: GenerationRequest) -> tuple[str, TextDelta]:
        """Run a request to completion: (full text, final delta)."""
        parts: list[str] = []
        last: TextDelta | None = None
        async for delta in self.stream(request):
            parts.append(delta.text)
            last = delta
        assert last is not None and last.finish_reason is not None
        return "".join(parts), last

    def stats(self) -> dict:
        return {"queue_depth": 0, "running": 0}

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release threads/connections. Safe to call twice."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Synchronous counterpart of aclose for in-process backends."""


class Embedder(ABC):
    name: str
    context_length: int
    dimensions: int

    @abstractmethod
    async def embed(self, texts: list[str], progress: EmbedProgress | None = None) -> EmbeddingResult:
        """Embed `texts`. `progress`, if given, is kept up to date and stops the work when set."""

    def stats(self) -> dict:
        return {"queue_depth": 0, "running": 0}

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release resources. Safe to call twice."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Synchronous counterpart of aclose."""
