"""Continuous batching for an in-process causal LM.

One background thread per model runs the decode loop. Requests are admitted at token boundaries:
each new sequence is prefilled alone (so its numerics equal a plain ``model.generate``), then its
KV cache is merged into the running batch. The batch cache is left-padded: every row ends at the
same column, rows carry their own position ids, and an attention mask hides the padding. Finished
or cancelled rows are dropped with one ``index_select`` and leading all-padding columns are trimmed.
The per-layer KV buffers have spare capacity so a decode step writes in place instead of
concatenating (what ``DynamicCache`` does).

Tokens reach asyncio consumers through ``loop.call_soon_threadsafe`` into one ``asyncio.Queue``
per request.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from .text import IncrementalDetokenizer, StopMatcher
from .types import EngineError, FinishReason, Overloaded, SamplingParams, TextDelta

log = logging.getLogger(__name__)

_CAPACITY_STEP = 128  # KV columns added at a time when a buffer is full


class _BufferedLayer(DynamicLayer):
    """A DynamicLayer whose tensors are views into a buffer with spare columns."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, length: int):
        super().__init__()
        self.device = keys.device
        self.is_initialized = True
        self._kbuf, self._vbuf, self._n = keys, values, length
        self._sync_views()

    def _sync_views(self) -> None:
        self.keys = self._kbuf[:, :, : self._n]
        self.values = self._vbuf[:, :, : self._n]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        q = key_states.shape[-2]
        if self._n + q > self._kbuf.shape[-2]:
            self._grow(self._n + q + _CAPACITY_STEP)
        self._kbuf[:, :, self._n : self._n + q] = key_states
        self._vbuf[:, :, self._n : self._n + q] = value_states
        self._n += q
        self._sync_views()
        return self.keys, self.values

    def _grow(self, capacity: int) -> None:
        b, h, _, d = self._kbuf.shape
        for attr in ("_kbuf", "_vbuf"):
            old = getattr(self, attr)
            new = old.new_empty((b, h, capacity, d))
            new[:, :, : self._n] = old[:, :, : self._n]
            setattr(self, attr, new)

    def get_seq_length(self) -> int:
        return self._n

    def select_and_trim(self, rows: torch.Tensor, offset: int) -> None:
        """Keep `rows` and drop the first `offset` (all-padding) columns."""
        self._kbuf = self._kbuf.index_select(0, rows)[:, :, offset:]
        self._vbuf = self._vbuf.index_select(0, rows)[:, :, offset:]
        self._n -= offset
        self._sync_views()


def _merged(old: torch.Tensor | None, old_len: int, new: torch.Tensor, length: int) -> torch.Tensor:
    """Stack batch rows `old` [B,H,old_len..] and `new` [1,H,n,D], right-aligned at `length`."""
    b = 0 if old is None else old.shape[0]
    h, n, d = new.shape[1], new.shape[2], new.shape[3]
    out = new.new_zeros((b + 1, h, length + _CAPACITY_STEP, d))
    if old is not None:
        out[:b, :, length - old_len : length] = old[:, :, :old_len]
    out[b, :, length - n : length] = new[0]
    return out


@dataclass(eq=False)
class RequestHandle:
    """The asyncio side of one request: a queue of TextDelta / exceptions and a cancel flag."""

    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancelled: bool = False
    id: int = 0

    def emit(self, item: TextDelta | BaseException) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # event loop closed: nobody is listening any more
            self.cancelled = True


@dataclass(eq=False)
class _Sequence:
    handle: RequestHandle
    prompt_ids: list[int]
    params: SamplingParams
    detok: IncrementalDetokenizer
    stops: StopMatcher
    generator: torch.Generator | None
    out_ids: list[int] = field(default_factory=list)
    counts: dict[int, int] = field(default_factory=dict)
    submitted: float = field(default_factory=time.perf_counter)


class BatchScheduler:
    """Owns the model's decode thread and the running batch."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        context_length: int,
        max_queue: int = 64,
        max_batch_size: int = 8,
        eos_ids: set[int] | None = None,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.context_length = context_length
        self.max_queue = max_queue
        self.max_batch_size = max_batch_size
        self.eos_ids = eos_ids or set()
        self.device = next(model.parameters()).device
        self._cv = threading.Condition()
        self._pending: deque[_Sequence] = deque()
        self._stop = False
        self._ids = itertools.count(1)
        # running batch (touched only by the decode thread)
        self._seqs: list[_Sequence] = []
        self._cache: DynamicCache | None = None
        self._mask: torch.Tensor | None = None  # [B, L] 1 = real token
        self._pos: torch.Tensor | None = None  # [B] next position id
        self._last: torch.Tensor | None = None  # [B] last sampled token
        self._padded = False
        self._running = 0
        self.counters = {"steps": 0, "tokens": 0, "max_batch_seen": 0, "admitted": 0, "failed": 0}
        self._thread = threading.Thread(target=self._run, name=f"engine-{name}", daemon=True)
        self._thread.start()

    # ---- asyncio side -------------------------------------------------------------------
    def submit(self, prompt_ids: list[int], params: SamplingParams) -> RequestHandle:
        """Queue a request (raises Overloaded when the admission queue is full)."""
        handle = RequestHandle(loop=asyncio.get_running_loop(), id=next(self._ids))
        seq = _Sequence(
            handle=handle,
            prompt_ids=prompt_ids,
            params=params,
            detok=IncrementalDetokenizer(self.tokenizer, prompt_ids),
            stops=StopMatcher(params.stop),
            generator=self._generator(params),
        )
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
            return {"queue_depth": len(self._pending), "running": self._running, **self.counters}

    def shutdown(self, timeout: float = 10.0) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _generator(self, params: SamplingParams) -> torch.Generator | None:
        if params.temperature <= 0:
            return None
        gen = torch.Generator(device=self.device)
        if params.seed is not None:
            gen.manual_seed(params.seed)
        else:
            gen.seed()
        return gen

    # ---- decode thread ------------------------------------------------------------------
    def _run(self) -> None:
        with torch.inference_mode():
            while True:
                with self._cv:
                    while not self._stop and not self._pending and not self._seqs:
                        self._cv.wait()
                    if self._stop:
                        break
                    free = self.max_batch_size - len(self._seqs)
                    new = [self._pending.popleft() for _ in range(min(free, len(self._pending)))]
                self._drop_cancelled()
                for seq in new:
                    self._admit(seq)
                if self._seqs:
                    self._step()
        self._fail_all(EngineError(f"model {self.name!r} was shut down"))

    def _publish_running(self) -> None:
        with self._cv:
            self._running = len(self._seqs)
            self.counters["max_batch_seen"] = max(self.counters["max_batch_seen"], self._running)

    def _admit(self, seq: _Sequence) -> None:
        if seq.handle.cancelled:
            return
        try:
            ids = torch.tensor([seq.prompt_ids], device=self.device)
            cache = DynamicCache(config=self.model.config)
            out = self.model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1)
            token = self._sample_rows(out.logits[:, -1, :], [seq])[0]
        except Exception as exc:
            log.exception("prefill failed for %s", self.name)
            self._fail([seq], exc)
            return
        self.counters["admitted"] += 1
        if self._advance(seq, token):
            return
        self._merge(seq, cache, token)
        self._publish_running()

    def _merge(self, seq: _Sequence, cache: DynamicCache, token: int) -> None:
        n = len(seq.prompt_ids)
        old_len = self._cache.get_seq_length() if self._cache is not None else 0
        length = max(old_len, n)
        layers = []
        for i, layer in enumerate(cache.layers):
            old = self._cache.layers[i] if self._cache is not None else None
            k = _merged(None if old is None else old._kbuf, old_len, layer.keys, length)
            v = _merged(None if old is None else old._vbuf, old_len, layer.values, length)
            layers.append(_BufferedLayer(k, v, length))
        new_cache = DynamicCache(config=self.model.config)
        new_cache.layers = layers
        self._cache = new_cache
        row_mask = torch.zeros((1, length), dtype=torch.long, device=self.device)
        row_mask[0, length - n :] = 1
        if self._mask is None:
            self._mask = row_mask
        else:
            pad = torch.zeros((self._mask.shape[0], length - old_len), dtype=torch.long, device=self.device)
            self._mask = torch.cat([torch.cat([pad, self._mask], dim=1), row_mask], dim=0)
        self._padded = self._padded or old_len != n
        one = torch.tensor([n], device=self.device)
        tok = torch.tensor([token], device=self.device)
        self._pos = one if self._pos is None else torch.cat([self._pos, one])
        self._last = tok if self._last is None else torch.cat([self._last, tok])
        self._seqs.append(seq)

    def _step(self) -> None:
        seqs = self._seqs
        try:
            b = len(seqs)
            self._mask = torch.cat([self._mask, self._mask.new_ones((b, 1))], dim=1)
            out = self.model(
                input_ids=self._last.view(b, 1),
                attention_mask=self._mask if self._padded else None,
                position_ids=self._pos.view(b, 1),
                cache=self._cache,
                use_cache=True,
            )
            self._pos = self._pos + 1
            tokens = self._sample_rows(out.logits[:, -1, :], seqs)
        except Exception as exc:
            log.exception("decode step failed for %s", self.name)
            self._reset_batch()
            self._fail(list(seqs), exc)
            return
        self.counters["steps"] += 1
        self._last = torch.tensor(tokens, device=self.device)
        keep = [i for i, (seq, tok) in enumerate(zip(seqs, tokens, strict=True)) if not self._advance(seq, tok)]
        if len(keep) < len(seqs):
            self._keep_rows(keep)

    def _drop_cancelled(self) -> None:
        keep = [i for i, seq in enumerate(self._seqs) if not seq.handle.cancelled]
        if len(keep) < len(self._seqs):
            self._keep_rows(keep)

    def _keep_rows(self, keep: list[int]) -> None:
        if not keep:
            self._reset_batch()
            return
        rows = torch.tensor(keep, device=self.device)
        mask = self._mask.index_select(0, rows)
        offset = int(mask.any(dim=0).long().argmax())  # first column some row still uses
        for layer in self._cache.layers:
            layer.select_and_trim(rows, offset)
        self._mask = mask[:, offset:]
        self._padded = bool((self._mask == 0).any())
        self._pos = self._pos.index_select(0, rows)
        self._last = self._last.index_select(0, rows)
        self._seqs = [self._seqs[i] for i in keep]
        self._publish_running()

    def _reset_batch(self) -> None:
        self._seqs, self._cache, self._mask, self._pos, self._last = [], None, None, None, None
        self._padded = False
        self._publish_running()

    # ---- sampling -----------------------------------------------------------------------
    def _sample_rows(self, logits: torch.Tensor, seqs: list[_Sequence]) -> list[int]:
        logits = logits.float()
        tokens = logits.argmax(dim=-1).tolist()
        for i, seq in enumerate(seqs):
            p = seq.params
            if p.temperature > 0 or ((p.presence_penalty or p.frequency_penalty) and seq.counts):
                tokens[i] = sample_token(logits[i], p, seq.counts, seq.generator)
        return tokens

    def _advance(self, seq: _Sequence, token: int) -> bool:
        """Record one generated token and emit its text. True when the sequence is done."""
        if seq.handle.cancelled:
            return True
        seq.out_ids.append(token)
        seq.counts[token] = seq.counts.get(token, 0) + 1
        self.counters["tokens"] += 1
        finish: FinishReason | None = None
        if token in self.eos_ids:
            finish, text = "stop", self._flush(seq)
        else:
            text, hit = seq.stops.feed(seq.detok.push(token))
            if hit:
                finish = "stop"
            elif len(seq.out_ids) >= seq.params.max_tokens or (
                len(seq.prompt_ids) + len(seq.out_ids) >= self.context_length
            ):
                finish, text = "length", text + self._flush(seq)
        if text or finish:
            seq.handle.emit(
                TextDelta(
                    text=text,
                    prompt_tokens=len(seq.prompt_ids),
                    completion_tokens=len(seq.out_ids),
                    finish_reason=finish,
                )
            )
        return finish is not None

    @staticmethod
    def _flush(seq: _Sequence) -> str:
        """Text held back by the detokenizer and stop matcher, at the end of a sequence."""
        tail, hit = seq.stops.feed(seq.detok.flush())
        return tail if hit else tail + seq.stops.flush()

    def _fail(self, seqs: list[_Sequence], exc: Exception) -> None:
        self.counters["failed"] += len(seqs)
        err = exc if isinstance(exc, EngineError) else EngineError(f"model {self.name!r} failed: {exc}")
        for seq in seqs:
            seq.handle.emit(err)

    def _fail_all(self, exc: EngineError) -> None:
        with self._cv:
            pending = list(self._pending)
            self._pending.clear()
        running = self._seqs
        self._reset_batch()
        self._fail(pending + running, exc)


def sample_token(
    logits: torch.Tensor,
    params: SamplingParams,
    counts: dict[int, int],
    generator: torch.Generator | None,
) -> int:
    """Sample one token from float32 logits [V] with penalties, temperature and top-p."""
    if counts and (params.presence_penalty or params.frequency_penalty):
        logits = logits.clone()
        ids = torch.tensor(list(counts), device=logits.device)
        freq = torch.tensor(list(counts.values()), dtype=logits.dtype, device=logits.device)
        logits[ids] -= params.frequency_penalty * freq + params.presence_penalty
    if params.temperature <= 0:
        return int(logits.argmax())
    logits = logits / params.temperature
    if params.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        # drop tokens once the mass before them already reaches top_p (always keeps the first)
        drop = (probs.cumsum(dim=-1) - probs) >= params.top_p
        sorted_logits[drop] = float("-inf")
        logits = torch.full_like(logits, float("-inf")).scatter(0, order, sorted_logits)
    probs = torch.softmax(logits, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))
