"""The transformers (torch) model runner: a left-padded batch KV cache with spare capacity.

Each new sequence is prefilled alone (so its numerics equal a plain ``model.generate``), then its
KV cache is merged into the running batch. The batch cache is left-padded: every row ends at the
same column, rows carry their own position ids, and an attention mask hides the padding. Finished
or cancelled rows are dropped with one ``index_select`` and leading all-padding columns are trimmed.
The per-layer KV buffers have spare capacity so a decode step writes in place instead of
concatenating (what ``DynamicCache`` does).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any, cast

import numpy as np
import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from .runner import ModelRunner
from .sequence import LogitsGroup, PrefillChunk, Sequence, StepPlan

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


def _rows(logits: torch.Tensor) -> np.ndarray:
    """Last-position logits [B, V] as float32 numpy (no copy for fp32 on the CPU)."""
    return logits[:, -1, :].float().cpu().numpy()


class TorchRunner(ModelRunner):
    """Runs a transformers causal LM. Prompts are prefilled one sequence at a time, in chunks of
    at most `prefill_chunk` tokens a step (their KV grows in a cache of their own), and merged
    into the decoding batch once complete; so a long prompt never stalls the running streams."""

    kind = "transformers"

    def __init__(self, model: Any, *, max_batch_size: int = 8, prefill_chunk: int = 128):
        self.model = model
        self.max_batch_size = max_batch_size
        self.prefill_chunk = prefill_chunk
        self.idle_prefill_budget = max(4 * prefill_chunk, prefill_chunk)
        self._partial: dict[int, DynamicCache] = {}  # id(seq) -> the KV of its prompt so far
        self.device = next(model.parameters()).device
        # the batch, in row order
        self._seqs: list[Sequence] = []
        self._cache: DynamicCache | None = None
        self._mask: torch.Tensor | None = None  # [B, L] 1 = real token
        self._pos: torch.Tensor | None = None  # [B] next position id
        self._padded = False

    def thread_context(self) -> contextlib.AbstractContextManager:
        return torch.inference_mode()

    def add(self, seq: Sequence) -> None:
        seq.num_computed = 0

    def execute(self, plan: StepPlan) -> list[LogitsGroup]:
        groups: list[LogitsGroup] = []
        if plan.decode:  # the merged rows: every prefilled sequence
            groups.append((list(self._seqs), self._decode()))
        for chunk in plan.prefill:
            logits = self._prefill(chunk)
            if logits is not None:
                groups.append(([chunk.seq], logits))
        return groups

    def _decode(self) -> np.ndarray:
        b = len(self._seqs)
        assert self._mask is not None and self._pos is not None  # set by the first _merge
        last = torch.tensor([seq.out_ids[-1] for seq in self._seqs], device=self.device)
        self._mask = torch.cat([self._mask, self._mask.new_ones((b, 1))], dim=1)
        out = self.model(
            input_ids=last.view(b, 1),
            attention_mask=self._mask if self._padded else None,
            position_ids=self._pos.view(b, 1),
            cache=self._cache,
            use_cache=True,
        )
        self._pos = self._pos + 1
        for seq in self._seqs:
            seq.num_computed += 1
        return _rows(out.logits)

    def _prefill(self, chunk: PrefillChunk) -> np.ndarray | None:
        """Compute prompt tokens [start, end) of a sequence; its logits once the prompt is done."""
        seq = chunk.seq
        cache = self._partial.pop(id(seq), None) or DynamicCache(config=self.model.config)
        ids = torch.tensor([seq.prompt_ids[chunk.start : chunk.end]], device=self.device)
        out = self.model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1)
        seq.num_computed = chunk.end
        if not chunk.completes:
            self._partial[id(seq)] = cache
            return None
        self._merge(seq, cache)
        return _rows(out.logits)

    def _merge(self, seq: Sequence, cache: DynamicCache) -> None:
        n = len(seq.prompt_ids)
        old_len = self._cache.get_seq_length() if self._cache is not None else 0
        length = max(old_len, n)
        layers: list = []
        old_layers = self._buffered_layers() if self._cache is not None else None
        for i, layer in enumerate(cast(list[DynamicLayer], cache.layers)):
            assert layer.keys is not None and layer.values is not None  # prefilled
            old = old_layers[i] if old_layers is not None else None
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
        self._pos = one if self._pos is None else torch.cat([self._pos, one])
        self._seqs.append(seq)

    def release(self, seqs: Iterable[Sequence]) -> None:
        gone = set(map(id, seqs))
        for seq_id in gone:
            self._partial.pop(seq_id, None)  # still prefilling: not in the batch yet
        keep = [i for i, seq in enumerate(self._seqs) if id(seq) not in gone]
        if len(keep) == len(self._seqs):
            return
        if not keep:
            self.reset()
            return
        assert self._mask is not None and self._pos is not None
        rows = torch.tensor(keep, device=self.device)
        mask = self._mask.index_select(0, rows)
        offset = int(mask.any(dim=0).long().argmax())  # first column some row still uses
        for layer in self._buffered_layers():
            layer.select_and_trim(rows, offset)
        self._mask = mask[:, offset:]
        self._padded = bool((self._mask == 0).any())
        self._pos = self._pos.index_select(0, rows)
        self._seqs = [self._seqs[i] for i in keep]

    def _buffered_layers(self) -> list[_BufferedLayer]:
        """The merged cache's layers: always _BufferedLayer (see _merge)."""
        assert self._cache is not None
        return cast(list[_BufferedLayer], self._cache.layers)

    def reset(self) -> None:
        self._seqs, self._cache, self._mask, self._pos = [], None, None, None
        self._padded = False
        self._partial.clear()

    def kv_tokens(self) -> int:
        prefilling = sum(cache.get_seq_length() for cache in self._partial.values())
        return sum(seq.num_computed for seq in self._seqs) + prefilling
