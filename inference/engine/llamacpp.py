"""The llama.cpp model runner: GGUF chat models on the CPU through llama-cpp-python's C API.

Many sequences decode in one ``llama_decode``: every batch token carries its own sequence id,
each sequence has its own KV cells (a non-unified cache: one stream per sequence, so attention
only reads a sequence's own cells). Prompt chunks of newly admitted sequences ride in the same
batch as the running sequences' decode tokens, as llama-server does. llama.cpp computes such a
batch in one pass only over consecutive sequence ids, so a new sequence takes the lowest free slot
(sequence id) and the batch is laid out in slot order.

Prompt reuse: a new sequence starts from the longest prefix of its prompt whose KV exists already,
wherever it is:
- in free slots: a finished sequence's cells stay in its slot as a cache (follow-up turns of a
  chat, prompts that differ at the end), as llama-server's slots do;
- in running sequences (requests arriving together that share a system prompt, few-shot examples
  or the start of a question);
- in the chat template's shared prefix, computed once at start.
Cells in another slot are copied (``llama_state_seq_get_data`` / ``set_data``: ~12 µs per cell
here, where computing a prompt token takes milliseconds), then cut back to the shared prefix;
llama.cpp's own ``seq_cp`` copies only whole streams between per-sequence streams.

Importing this module imports llama_cpp; the manager imports it only when llama.cpp is wanted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import llama_cpp.llama_cpp as lc
import numpy as np
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from .generator import BatchedTextGenerator
from .output import OutputProcessor
from .runner import ModelRunner
from .scheduler import Scheduler
from .sequence import LogitsGroup, PrefillChunk, Sequence, StepPlan
from .text import PieceDetokenizer
from .types import EngineError, GenerationRequest, InvalidRequest, ModelLoadError, ModelSpec, SamplingParams

log = logging.getLogger(__name__)

# ggml log levels: 3 warn, 4 error (1 debug, 2 info and 5 "continued" are dropped)
_LOG_LEVELS = {3: logging.WARNING, 4: logging.ERROR}


@lc.llama_log_callback
def _log_to_python(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    if level in _LOG_LEVELS and text:
        log.log(_LOG_LEVELS[level], "llama.cpp: %s", text.decode("utf-8", "replace").rstrip())


_backend_lock = threading.Lock()
_backend_ready = False


def _init_backend() -> None:
    global _backend_ready
    with _backend_lock:
        if not _backend_ready:
            lc.llama_log_set(_log_to_python, ctypes.c_void_p(0))
            lc.llama_backend_init()
            _backend_ready = True


class LlamaCppModel:
    """A loaded GGUF model: weights, vocabulary, special tokens and chat template."""

    def __init__(self, path: str | Path, *, use_extra_bufts: bool = False):
        _init_backend()
        path = Path(path)
        if not path.is_file():
            raise ModelLoadError(f"GGUF file missing: {path}")
        self.path = path
        params = lc.llama_model_default_params()
        # Extra buffer types repack weights for AMX / AVX512 kernels. Off by default: on AMX CPUs
        # under some hypervisors ggml_backend_amx_mul_mat segfaults (killing the whole server),
        # and Q4_1 has no other repacked kernel. llama-server's equivalent is --no-repack.
        params.use_extra_bufts = use_extra_bufts
        self.ptr = lc.llama_model_load_from_file(str(path).encode(), params)
        if not self.ptr:
            raise ModelLoadError(f"llama.cpp could not load {path}")
        self.vocab = lc.llama_model_get_vocab(self.ptr)
        self.n_vocab = int(lc.llama_vocab_n_tokens(self.vocab))
        self.n_ctx_train = int(lc.llama_model_n_ctx_train(self.ptr))
        self.eog_ids = {t for t in range(self.n_vocab) if lc.llama_vocab_is_eog(self.vocab, t)}
        self.bos_id = int(lc.llama_vocab_bos(self.vocab))
        self.eos_id = int(lc.llama_vocab_eos(self.vocab))
        template = lc.llama_model_chat_template(self.ptr, None)
        self.chat_template = template.decode() if template else None
        self._pieces: dict[int, bytes] = {}
        self._piece_buf = ctypes.create_string_buffer(256)

    def token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return lc.llama_vocab_get_text(self.vocab, token).decode("utf-8", "replace")

    def tokenize(self, text: str, *, add_special: bool) -> list[int]:
        """Token ids of `text`; special tokens written in the text (<|im_start|>) are parsed."""
        data = text.encode()
        n_max = len(data) + 8
        while True:
            buf = (lc.llama_token * n_max)()
            n = lc.llama_tokenize(self.vocab, data, len(data), buf, n_max, add_special, True)
            if n >= 0:
                return buf[:n]
            n_max = -n

    def piece(self, token: int) -> bytes:
        """The bytes a generated token contributes (b"" for control tokens). Engine thread only."""
        cached = self._pieces.get(token)
        if cached is None:
            buf = self._piece_buf
            n = lc.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
            if n < 0:
                buf = ctypes.create_string_buffer(-n)
                n = lc.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
            cached = self._pieces[token] = buf.raw[:n]
        return cached

    def close(self) -> None:
        if self.ptr:
            lc.llama_model_free(self.ptr)
            self.ptr = None


class _Batch:
    """A llama_batch over numpy arrays (one sequence id per token), filled with slice writes.

    llama_batch_init allocates one seq_id array per token, which Python can only fill element by
    element; here every token's seq_id pointer points into one int32 array instead. The struct
    is never passed to llama_batch_free: numpy owns the memory.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.token = np.zeros(capacity, dtype=np.int32)
        self.pos = np.zeros(capacity, dtype=np.int32)
        self.n_seq_id = np.ones(capacity, dtype=np.int32)
        self.seq = np.zeros(capacity, dtype=np.int32)
        self.logits = np.zeros(capacity, dtype=np.int8)
        int32_p = ctypes.POINTER(ctypes.c_int32)
        base = self.seq.ctypes.data
        self._seq_ptrs = (int32_p * capacity)(*(ctypes.cast(base + 4 * i, int32_p) for i in range(capacity)))
        self.struct = lc.llama_batch(
            n_tokens=0,
            token=self.token.ctypes.data_as(ctypes.POINTER(lc.llama_token)),
            embd=None,
            pos=self.pos.ctypes.data_as(ctypes.POINTER(lc.llama_pos)),
            n_seq_id=self.n_seq_id.ctypes.data_as(int32_p),
            seq_id=ctypes.cast(self._seq_ptrs, ctypes.POINTER(int32_p)),
            logits=self.logits.ctypes.data_as(ctypes.POINTER(ctypes.c_int8)),
        )


def _context(model: LlamaCppModel, *, n_ctx: int, n_seq: int, n_batch: int, n_threads: int) -> int:
    params = lc.llama_context_default_params()
    params.n_ctx = n_ctx
    params.n_seq_max = n_seq
    params.n_batch = n_batch
    params.n_ubatch = min(512, n_batch)
    params.n_threads = params.n_threads_batch = n_threads
    params.kv_unified = False
    params.no_perf = True
    ctx = lc.llama_init_from_model(model.ptr, params)
    if not ctx:
        raise ModelLoadError(f"llama.cpp could not create a context for {model.path.name}")
    return ctx


# Copying a cell's KV (state get + set, ~12 µs) costs about 1/700 of computing a prompt token at
# one thread (~8 ms); 256 leaves room for more threads computing faster.
_CELLS_PER_TOKEN = 256


def _common_prefix_length(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class LlamaCppRunner(ModelRunner):
    """One llama.cpp context with a KV stream per batch slot (llama.cpp sequence id = slot)."""

    kind = "llama_cpp"

    def __init__(
        self,
        model: LlamaCppModel,
        *,
        max_batch_size: int,
        context_length: int,
        n_threads: int,
        prefill_chunk: int = 256,
        idle_prefill_budget: int = 1024,
        prefix_ids: list[int] | None = None,
    ):
        self.model = model
        self._prefix_ids = prefix_ids or []  # computed on the engine thread (thread_context)
        self.max_batch_size = max_batch_size
        self.context_length = context_length
        self.prefill_chunk = prefill_chunk
        self.idle_prefill_budget: int = max(idle_prefill_budget, prefill_chunk)
        n_batch = self.idle_prefill_budget + max_batch_size
        self.ctx = _context(
            model, n_ctx=context_length * max_batch_size, n_seq=max_batch_size, n_batch=n_batch, n_threads=n_threads
        )
        if lc.llama_n_ctx_seq(self.ctx) < context_length:
            raise ModelLoadError(f"llama.cpp gave {lc.llama_n_ctx_seq(self.ctx)} KV cells per sequence")
        self.mem = lc.llama_get_memory(self.ctx)
        self._batch = _Batch(n_batch)
        self._cached: list[list[int]] = [[] for _ in range(max_batch_size)]  # free slot -> tokens its cells hold
        self._occupied: dict[int, Sequence] = {}  # slot -> the running sequence in it
        self._prefix: list[int] = []
        self._prefix_state: ctypes.Array | None = None
        self.reused_tokens = 0  # prompt tokens not computed thanks to a slot's cache or the prefix

    # ---- shared prefix ------------------------------------------------------------------
    def cache_prefix(self, ids: list[int]) -> None:
        """Compute the KV of `ids` once; sequences whose prompt starts with it get a copy."""
        budget = self.idle_prefill_budget
        free = self._free_slots()
        if len(ids) < 2 or len(ids) > budget or not free:
            return
        slot = free[-1]
        b = self._batch
        n = len(ids)
        b.token[:n], b.pos[:n], b.seq[:n], b.logits[:n] = ids, np.arange(n), slot, 0
        b.struct.n_tokens = n
        try:
            if lc.llama_decode(self.ctx, b.struct) != 0:
                log.warning("could not precompute the chat-template prefix; prompts are computed whole")
                return
            size = lc.llama_state_seq_get_size(self.ctx, slot)
            state = (ctypes.c_uint8 * size)()
            if lc.llama_state_seq_get_data(self.ctx, state, size, slot) != size:
                return
        finally:
            lc.llama_memory_seq_rm(self.mem, slot, -1, -1)
        self._prefix, self._prefix_state = list(ids), state

    @property
    def prefix_tokens(self) -> int:
        return len(self._prefix)

    @contextlib.contextmanager
    def thread_context(self) -> Iterator[None]:
        # With more than one thread, llama.cpp computes in an OpenMP team owned by the calling
        # thread. Every decode of this context, the prefix's included, runs on the engine thread:
        # a second team left idle on another thread makes libgomp stop spinning between steps
        # (measured: decode steps 18% slower, 16.2 against 13.7 ms at 2 threads).
        self.cache_prefix(self._prefix_ids)
        yield

    # ---- ModelRunner --------------------------------------------------------------------
    def _free_slots(self) -> list[int]:
        """Slots no running sequence holds, lowest first."""
        return [slot for slot in range(self.max_batch_size) if slot not in self._occupied]

    def _best_copy(self, prompt: list[int], free: list[int]) -> tuple[int, int | None, int]:
        """The longest prefix of `prompt` held elsewhere: (its length, the slot holding it or None
        for the template prefix, the cells a copy moves). The `free` slots keep their last
        sequence's cells; running sequences count with the prompt tokens computed so far."""
        n = len(self._prefix)
        best: tuple[int, int | None, int] = (0, None, 0)
        if self._prefix_state is not None and prompt[:n] == self._prefix:
            best = (n, None, n)
        for other in free:
            cached = self._cached[other]
            shared = _common_prefix_length(cached, prompt)
            if shared > best[0]:
                best = (shared, other, len(cached))
        for seq in self._occupied.values():
            shared = min(_common_prefix_length(seq.prompt_ids, prompt), seq.num_computed)
            if shared > best[0]:
                best = (shared, seq.slot, seq.num_computed)
        return best

    def _copy_cells(self, slot: int, source: int | None) -> bool:
        """Replace `slot`'s cells by a copy of sequence `source`'s cells (None: the template prefix)."""
        state = self._prefix_state
        if source is not None:
            size = lc.llama_state_seq_get_size(self.ctx, source)
            state = (ctypes.c_uint8 * size)()
            if lc.llama_state_seq_get_data(self.ctx, state, size, source) != size:
                return False
        lc.llama_memory_seq_rm(self.mem, slot, -1, -1)
        return state is not None and bool(lc.llama_state_seq_set_data(self.ctx, state, len(state), slot))

    def add(self, seq: Sequence) -> None:
        prompt = seq.prompt_ids
        # The lowest free slot: llama.cpp decodes a batch in one pass only over consecutive
        # sequence ids (per-sequence KV streams are viewed as one range), so running sequences
        # are kept on the lowest slots; a gap costs a second pass over the weights every step.
        slot, *others = self._free_slots()
        # keep at least one prompt token to compute: its logits give the first output token
        limit = len(prompt) - 1
        keep = min(_common_prefix_length(self._cached[slot], prompt), limit)  # the slot's own cells
        self._cached[slot] = []  # from now on the cells are this sequence's
        seq.slot = slot
        shared, source, cells = self._best_copy(prompt, others)
        shared = min(shared, limit)
        # the source's cells past the shared prefix are copied too: a long source must save more
        if shared > keep and (shared - keep) * _CELLS_PER_TOKEN >= cells:
            keep = shared if self._copy_cells(slot, source) else 0
        if not lc.llama_memory_seq_rm(self.mem, slot, keep, -1):  # cells past the shared prefix
            lc.llama_memory_seq_rm(self.mem, slot, -1, -1)
            keep = 0
        seq.num_computed = keep
        self.reused_tokens += keep
        self._occupied[slot] = seq

    def execute(self, plan: StepPlan) -> list[LogitsGroup]:
        b = self._batch
        n = 0
        wanted: list[Sequence] = []  # sequences with a logits row, in batch order
        # in slot order, so that llama.cpp can take consecutive sequence ids in one pass
        work: list[tuple[int, Sequence | PrefillChunk]] = [(seq.slot, seq) for seq in plan.decode]
        work += [(chunk.seq.slot, chunk) for chunk in plan.prefill]
        work.sort(key=lambda item: item[0])
        for slot, item in work:
            if isinstance(item, Sequence):
                b.token[n], b.pos[n], b.seq[n], b.logits[n] = item.out_ids[-1], item.num_computed, slot, 1
                wanted.append(item)
                n += 1
                continue
            m = item.end - item.start
            b.token[n : n + m] = item.seq.prompt_ids[item.start : item.end]
            b.pos[n : n + m] = np.arange(item.start, item.end)
            b.seq[n : n + m] = slot
            b.logits[n : n + m] = 0
            if item.completes:
                b.logits[n + m - 1] = 1
                wanted.append(item.seq)
            n += m
        b.struct.n_tokens = n
        rc = lc.llama_decode(self.ctx, b.struct)
        if rc != 0:
            raise EngineError(f"llama_decode failed (code {rc})")
        for seq in plan.decode:
            seq.num_computed += 1
        for chunk in plan.prefill:
            chunk.seq.num_computed = chunk.end
        if not wanted:
            return []
        # rows for the tokens with logits[i] = 1, contiguous and in batch order; a view, no copy
        logits = np.ctypeslib.as_array(lc.llama_get_logits(self.ctx), shape=(len(wanted), self.model.n_vocab))
        return [(wanted, logits)]

    def release(self, seqs: Iterable[Sequence]) -> None:
        """The slots are free at once; their cells stay as a cache of the tokens they hold."""
        for seq in seqs:
            if seq.slot >= 0:
                del self._occupied[seq.slot]
                self._cached[seq.slot] = (seq.prompt_ids + seq.out_ids)[: seq.num_computed]
                seq.slot = -1

    def forget_cache(self) -> None:
        """Free slots stop offering their cells (the next sequence in each computes from scratch)."""
        self._cached = [[] for _ in range(self.max_batch_size)]

    def reset(self) -> None:
        lc.llama_memory_clear(self.mem, True)
        self._occupied.clear()
        self.forget_cache()

    def kv_tokens(self) -> int:
        """KV cells held by running sequences (free slots' caches not counted), from llama.cpp."""
        total = 0
        for slot in self._occupied:
            top = lc.llama_memory_seq_pos_max(self.mem, slot)
            if top >= 0:
                total += top - lc.llama_memory_seq_pos_min(self.mem, slot) + 1
        return total

    def close(self) -> None:
        if self.ctx:
            lc.llama_free(self.ctx)
            self.ctx = 0  # freed


class LlamaCppTextGenerator(BatchedTextGenerator):
    """A GGUF chat model served by the continuous-batching scheduler over a LlamaCppRunner."""

    runner = "llama_cpp"

    def __init__(
        self,
        spec: ModelSpec,
        model: LlamaCppModel,
        *,
        max_queue: int = 64,
        max_batch_size: int = 8,
        n_threads: int | None = None,
        prefill_chunk: int = 256,
        owns_model: bool = True,
    ):
        self.name = spec.name
        self.spec = spec
        self.model = model
        self.owns_model = owns_model
        self.context_length = min(spec.context_length, model.n_ctx_train)
        self.eos_ids = set(model.eog_ids)
        self.n_threads = n_threads or os.cpu_count() or 1
        self._formatter = (
            Jinja2ChatFormatter(
                model.chat_template,
                eos_token=model.token_text(model.eos_id),
                bos_token=model.token_text(model.bos_id),
            )
            if model.chat_template
            else None
        )
        self.llama_runner = LlamaCppRunner(
            model,
            max_batch_size=max_batch_size,
            context_length=self.context_length,
            n_threads=self.n_threads,
            prefill_chunk=prefill_chunk,
            prefix_ids=self.template_prefix(),
        )
        output = OutputProcessor(
            name=spec.name,
            eos_ids=self.eos_ids,
            context_length=self.context_length,
            make_detokenizer=lambda _prompt_ids: PieceDetokenizer(model.piece),
        )
        self.scheduler = Scheduler(self.llama_runner, output, name=spec.name, max_queue=max_queue)

    # ---- prompt handling ----------------------------------------------------------------
    def stats(self) -> dict:
        return {**super().stats(), "reused_prompt_tokens": self.llama_runner.reused_tokens}

    def render_prompt(self, request: GenerationRequest) -> str:
        if request.messages is not None:
            if not request.messages:
                raise InvalidRequest("messages must not be empty")
            if self._formatter is None:
                raise InvalidRequest(f"model {self.name!r} has no chat template")
            return self._formatter(messages=list(request.messages)).prompt  # type: ignore[arg-type]
        if request.prompt is None:
            raise InvalidRequest("either messages or prompt is required")
        return request.prompt

    def encode(self, request: GenerationRequest) -> list[int]:
        # chat templates already contain any special tokens they need
        ids = self.model.tokenize(self.render_prompt(request), add_special=request.messages is None)
        if not ids:
            if self.model.bos_id < 0:
                raise InvalidRequest("prompt is empty")
            ids = [self.model.bos_id]
        return ids

    def template_prefix(self) -> list[int]:
        """Token ids every single-user-message chat starts with (default system prompt and all)."""
        if self._formatter is None:
            return []
        a, b = (
            self.encode(GenerationRequest(params=SamplingParams(), messages=({"role": "user", "content": c},)))
            for c in ("x", "y")
        )
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        return a[:n]

    # ---- lifecycle ----------------------------------------------------------------------
    def close(self) -> None:
        self.scheduler.shutdown()
        if self.owns_model and not self.scheduler.alive:  # the engine thread freed its context
            self.model.close()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)
