"""The TextGenerator side of an in-process model: validation, streaming and lifecycle.

Subclasses turn a request into prompt token ids (chat template + tokenizer) and build a
Scheduler over their model runner; everything else is shared.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import AsyncGenerator

from .base import TextGenerator
from .scheduler import Scheduler
from .types import ContextLengthExceeded, GenerationRequest, InvalidRequest, TextDelta


class BatchedTextGenerator(TextGenerator):
    runner: str  # which runner serves it: "transformers" | "llama_cpp"
    fallback: str | None = None  # why the configured runner was not used (set by the manager)
    scheduler: Scheduler

    @abstractmethod
    def encode(self, request: GenerationRequest) -> list[int]:
        """Prompt token ids of a request (chat template applied for messages)."""

    def count_prompt_tokens(self, request: GenerationRequest) -> int:
        return len(self.encode(request))

    def _validate(self, request: GenerationRequest) -> list[int]:
        params = request.params
        if params.max_tokens < 1:
            raise InvalidRequest("max_tokens must be at least 1")
        if params.temperature < 0 or not 0 < params.top_p <= 1:
            raise InvalidRequest("temperature must be >= 0 and top_p in (0, 1]")
        ids = self.encode(request)
        if len(ids) + params.max_tokens > self.context_length:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {self.context_length} tokens, but "
                f"{len(ids) + params.max_tokens} were requested ({len(ids)} in the prompt, "
                f"{params.max_tokens} for the completion). Shorten the prompt or lower max_tokens."
            )
        return ids

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[TextDelta, None]:
        ids = self._validate(request)
        handle = self.scheduler.submit(ids, request.params, priority=request.priority)
        done = False
        try:
            while True:
                item = await handle.queue.get()
                if isinstance(item, BaseException):
                    done = True
                    raise item
                if item.finish_reason is not None:
                    done = True
                yield item
                if done:
                    return
        finally:
            if not done:
                self.scheduler.cancel(handle)

    def stats(self) -> dict:
        return self.scheduler.stats()

    def close(self) -> None:
        self.scheduler.shutdown()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.scheduler.shutdown)
