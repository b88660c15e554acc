"""The state one request carries through the engine, and the plan of one engine step.

Shared by the scheduling policy (scheduler.py), the model runners (torch_runner.py,
llamacpp.py) and output processing (output.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from .text import Detokenizer, StopMatcher
from .types import Priority, SamplingParams, TextDelta


@dataclass(eq=False)
class RequestHandle:
    """The asyncio side of one request: a queue of TextDelta / exceptions and a cancel flag."""

    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancelled: bool = False
    id: int = 0

    def emit(self, item: TextDelta | BaseException) -> None:
        deliver([(self, item)])


def deliver(items: Iterable[tuple[RequestHandle, TextDelta | BaseException]]) -> None:
    """Hand items to their requests' event loops from the engine thread: one wake-up per loop
    (a step's tokens for every sequence together), not one per token. Waking the loop thread once
    per sequence made it fight the engine thread for the GIL mid-step, many times a step."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[RequestHandle, TextDelta | BaseException]]] = {}
    for handle, item in items:
        by_loop.setdefault(handle.loop, []).append((handle, item))
    for loop, batch in by_loop.items():
        try:
            loop.call_soon_threadsafe(_put_all, batch)
        except RuntimeError:  # event loop closed: nobody is listening any more
            for handle, _ in batch:
                handle.cancelled = True


def _put_all(batch: list[tuple[RequestHandle, TextDelta | BaseException]]) -> None:
    for handle, item in batch:
        handle.queue.put_nowait(item)


@dataclass(eq=False)
class Sequence:
    """One request inside the engine (touched only by the engine thread once queued)."""

    handle: RequestHandle
    prompt_ids: list[int]
    params: SamplingParams
    detok: Detokenizer
    stops: StopMatcher
    rng: np.random.Generator | None  # None: greedy
    out_ids: list[int] = field(default_factory=list)
    counts: dict[int, int] = field(default_factory=dict)  # generated token -> occurrences (penalties)
    num_computed: int = 0  # tokens whose KV the runner holds
    slot: int = -1  # the runner's row / llama.cpp sequence id
    priority: Priority = "interactive"
    submitted: float = field(default_factory=time.perf_counter)

    @property
    def prefilled(self) -> bool:
        return self.num_computed >= len(self.prompt_ids)


@dataclass(frozen=True)
class PrefillChunk:
    """Prompt tokens [start, end) of `seq` to compute this step; its logits are wanted at the end."""

    seq: Sequence
    start: int
    end: int

    @property
    def completes(self) -> bool:
        return self.end >= len(self.seq.prompt_ids)


@dataclass
class StepPlan:
    """What one forward step computes: one new token for each decoding sequence, prompt chunks."""

    decode: list[Sequence] = field(default_factory=list)
    prefill: list[PrefillChunk] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.decode or self.prefill)


# A runner's result: sequences to sample for, with their logits rows (float32 [len(seqs), vocab]).
LogitsGroup = tuple[list[Sequence], np.ndarray]
