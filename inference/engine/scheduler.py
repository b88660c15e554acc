"""The scheduling policy and the engine thread of an in-process model.

One background thread per model runs the loop. At every token boundary it drops cancelled
sequences, admits queued requests up to the runner's batch size, and composes the step: one
decode token for every running sequence plus prompt chunks of the sequences still prefilling (a
runner that can chunk gets at most `prefill_chunk` prompt tokens per step while others decode, so
running streams keep getting tokens). The runner executes the step; the output processor samples
and emits text; finished sequences are released the same step. The queue in front is bounded:
a full queue raises Overloaded at once instead of letting callers wait forever.

Tokens reach asyncio consumers in one ``asyncio.Queue`` per request, all of a step's together
(one ``loop.call_soon_threadsafe`` per event loop and step).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections import deque

from .output import OutputProcessor
from .runner import ModelRunner
from .sequence import PrefillChunk, RequestHandle, Sequence, StepPlan, deliver
from .types import EngineError, Overloaded, Priority, SamplingParams, TextDelta

log = logging.getLogger(__name__)


class Scheduler:
    """Owns the model's engine thread, its admission queue and the running batch."""

    def __init__(self, runner: ModelRunner, output: OutputProcessor, *, name: str, max_queue: int = 64):
        self.runner = runner
        self.output = output
        self.name = name
        self.max_queue = max_queue
        self.max_batch_size = runner.max_batch_size
        self._cv = threading.Condition()
        self._pending: deque[Sequence] = deque()
        self._stop = False
        self._ids = itertools.count(1)
        self._running: list[Sequence] = []  # touched only by the engine thread
        self._published = {"running": 0, "kv_tokens": 0}
        self.counters = {"steps": 0, "tokens": 0, "max_batch_seen": 0, "admitted": 0, "failed": 0}
        self._thread = threading.Thread(target=self._run, name=f"engine-{name}", daemon=True)
        self._started = threading.Event()
        self._thread.start()
        self._started.wait()  # the runner's per-thread set-up (thread_context) is done

    # ---- asyncio side -------------------------------------------------------------------
    def submit(
        self, prompt_ids: list[int], params: SamplingParams, *, priority: Priority = "interactive"
    ) -> RequestHandle:
        """Queue a request (raises Overloaded when the admission queue is full)."""
        handle = RequestHandle(loop=asyncio.get_running_loop(), id=next(self._ids))
        seq = self.output.new_sequence(handle, prompt_ids, params)
        seq.priority = priority
        with self._cv:
            if self._stop:
                raise EngineError(f"model {self.name!r} is shut down")
            if len(self._pending) >= self.max_queue:
                raise Overloaded(f"model {self.name!r} queue is full ({self.max_queue} waiting)")
            self._pending.append(seq)
            self._cv.notify()
        return handle

    def cancel(self, handle: RequestHandle) -> None:
        with self._cv:
            handle.cancelled = True
            for seq in self._pending:
                if seq.handle is handle:
                    self._pending.remove(seq)
                    break
            self._cv.notify()

    def stats(self) -> dict:
        with self._cv:
            return {"queue_depth": len(self._pending), **self._published, **self.counters}

    def hold_admission(self) -> threading.Condition:
        """A context manager: while held, the engine thread waits at its next token boundary
        (requests submitted meanwhile are admitted together). Reentrant for the holding thread."""
        return self._cv

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def shutdown(self, timeout: float = 10.0) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # ---- engine thread ------------------------------------------------------------------
    def _run(self) -> None:
        try:
            with self.runner.thread_context():
                self._started.set()
                while True:
                    with self._cv:
                        while not self._stop and not self._pending and not self._running:
                            self._cv.wait()
                        if self._stop:
                            break
                        new = self._admissible(self.max_batch_size - len(self._running))
                    self._drop_cancelled()
                    for seq in new:
                        self._admit(seq)
                    plan = self._plan()
                    if plan:
                        self._step(plan)
        finally:  # shut down, or the loop itself crashed: nobody may wait on a dead thread
            self._started.set()
            with self._cv:
                self._stop = True
            self._fail_all(EngineError(f"model {self.name!r} was shut down"))
            self.runner.close()

    def _admissible(self, free: int) -> list[Sequence]:
        """Take up to `free` queued sequences: interactive ones first, batch ones after, each in
        arrival order. Called with the lock held."""
        if free <= 0 or not self._pending:
            return []
        ordered = sorted(self._pending, key=lambda seq: seq.priority == "batch")  # stable
        taken = ordered[:free]
        for seq in taken:
            self._pending.remove(seq)
        return taken

    def _admit(self, seq: Sequence) -> None:
        if seq.handle.cancelled:
            return
        try:
            self.runner.add(seq)
        except Exception as exc:
            log.exception("admitting a request to %s failed", self.name)
            self.counters["failed"] += 1
            self.output.fail([seq], exc)
            return
        self.counters["admitted"] += 1
        self._running.append(seq)
        self._publish()

    def _plan(self) -> StepPlan:
        """Every prefilled sequence decodes one token; prompts are computed within the budget."""
        plan = StepPlan(decode=[seq for seq in self._running if seq.prefilled])
        waiting = [seq for seq in self._running if not seq.prefilled]
        chunk = self.runner.prefill_chunk
        if chunk is None:
            plan.prefill = [PrefillChunk(seq, seq.num_computed, len(seq.prompt_ids)) for seq in waiting]
            return plan
        budget = chunk if plan.decode else max(chunk, self.runner.idle_prefill_budget or 0)
        for seq in waiting:  # admission order
            if budget <= 0:
                break
            n = min(len(seq.prompt_ids) - seq.num_computed, budget)
            plan.prefill.append(PrefillChunk(seq, seq.num_computed, seq.num_computed + n))
            budget -= n
        return plan

    def _step(self, plan: StepPlan) -> None:
        try:
            groups = self.runner.execute(plan)
            results = [
                (seq, token)
                for seqs, logits in groups
                for seq, token in zip(seqs, self.output.sample(logits, seqs), strict=True)
            ]
        except Exception as exc:
            log.exception("engine step failed for %s", self.name)
            failed, self._running = self._running, []
            self.runner.reset()
            self.counters["failed"] += len(failed)
            self._publish()  # before the callers hear of it: they may read stats() at once
            self.output.fail(failed, exc)
            return
        self.counters["steps"] += 1
        finished: list[Sequence] = []
        outgoing: list[tuple[RequestHandle, TextDelta]] = []
        for seq, token in results:
            if seq.handle.cancelled:
                finished.append(seq)
                continue
            self.counters["tokens"] += 1
            delta = self.output.advance(seq, token)
            if delta is not None:
                outgoing.append((seq.handle, delta))
                if delta.finish_reason is not None:
                    finished.append(seq)
        if finished:
            self._release(finished)
        else:
            self._publish()
        # after the release: a caller that sees its last delta sees its KV cells freed too
        if outgoing:
            deliver(outgoing)

    def _drop_cancelled(self) -> None:
        cancelled = [seq for seq in self._running if seq.handle.cancelled]
        if cancelled:
            self._release(cancelled)

    def _release(self, seqs: list[Sequence]) -> None:
        gone = set(map(id, seqs))
        self.runner.release(seqs)
        self._running = [seq for seq in self._running if id(seq) not in gone]
        self._publish()

    def _publish(self) -> None:
        kv_tokens = self.runner.kv_tokens()
        with self._cv:
            self._published = {"running": len(self._running), "kv_tokens": kv_tokens}
            self.counters["max_batch_seen"] = max(self.counters["max_batch_seen"], len(self._running))

    def _fail_all(self, exc: EngineError) -> None:
        with self._cv:
            pending = list(self._pending)
            self._pending.clear()
        running, self._running = self._running, []
        if running:
            self.runner.reset()
        self.counters["failed"] += len(pending) + len(running)
        self._publish()
        self.output.fail(pending + running, exc)
