"""The model runner interface: one forward step over a batch of sequences.

A runner owns the model's per-sequence state (KV cache rows or llama.cpp sequence ids); the
scheduling policy decides what each step computes and the output processor turns the logits it
returns into tokens and text. Runners are driven from the engine thread only.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterable

from .sequence import LogitsGroup, Sequence, StepPlan


class ModelRunner(ABC):
    kind: str  # "transformers" | "llama_cpp"
    max_batch_size: int
    # Most prompt tokens computed in a step while other sequences are decoding; None: a runner
    # that prefills whole prompts (each alone) and cannot chunk them.
    prefill_chunk: int | None = None
    # Prompt-token budget of a step when nothing is decoding (no stream to keep fed).
    idle_prefill_budget: int | None = None

    def thread_context(self) -> contextlib.AbstractContextManager:
        """Entered once on the engine thread around its loop, before the scheduler is returned
        to its maker (torch.inference_mode; llama.cpp computes the template prefix)."""
        return contextlib.nullcontext()

    @abstractmethod
    def add(self, seq: Sequence) -> None:
        """Give an admitted sequence its state; may set seq.num_computed for a reused prefix."""

    @abstractmethod
    def execute(self, plan: StepPlan) -> list[LogitsGroup]:
        """Run one forward step; advance seq.num_computed; return logits for every decoding
        sequence and every sequence whose prefill completed."""

    @abstractmethod
    def release(self, seqs: Iterable[Sequence]) -> None:
        """Free the state (KV cells) of finished or cancelled sequences."""

    @abstractmethod
    def reset(self) -> None:
        """Drop every sequence's state (after a failed step)."""

    def kv_tokens(self) -> int:
        """KV positions currently held for live sequences (for stats)."""
        return 0

    def close(self) -> None:  # noqa: B027 - optional hook
        """Free native resources. Called once, from the engine thread, after its loop ends."""
