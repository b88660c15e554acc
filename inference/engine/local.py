"""In-process transformers backends: the chat model (batched) and the sentence embedder."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

from .base import Embedder
from .generator import BatchedTextGenerator
from .output import OutputProcessor
from .scheduler import Scheduler
from .text import IncrementalDetokenizer
from .torch_runner import TorchRunner
from .types import EmbeddingResult, EmbedProgress, GenerationRequest, InvalidRequest, ModelSpec

log = logging.getLogger(__name__)
T = TypeVar("T")

DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32, "float16": torch.float16}


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: without them bf16 GEMM is emulated row by row on the CPU."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_dtype(option: str | None, device: str = "cpu") -> torch.dtype:
    """Weight dtype from spec.options["dtype"]: "auto" (default), "bfloat16", "float32", "float16".

    "auto" is bf16 on CUDA and on CPUs with native bf16, else float32: on an AVX2-only CPU bf16
    matmul cost grows linearly with the rows (a 30-token prefill costs ~30 decode steps, a batch
    of 8 ~8x one row) while fp32 GEMM barely grows, so fp32 wins on TTFT and batched throughput
    (measured in bench/RESULTS.md).
    """
    name = option or "auto"
    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") or cpu_has_native_bf16() else torch.float32
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; expected auto or one of {sorted(DTYPES)}")
    return DTYPES[name]


def load_causal_lm(model_dir: str | Path, *, dtype: torch.dtype, device: str) -> Any:
    from transformers import AutoModelForCausalLM

    model: Any = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    return model.to(device).eval()


class TransformersTextGenerator(BatchedTextGenerator):
    """A causal LM served by the continuous-batching scheduler over a TorchRunner."""

    runner = "transformers"

    def __init__(
        self,
        spec: ModelSpec,
        model: Any,
        tokenizer: Any,
        *,
        max_queue: int = 64,
        max_batch_size: int = 8,
        prefill_chunk: int = 128,
    ):
        self.name = spec.name
        self.spec = spec
        self.model = model
        self.tokenizer = tokenizer
        model_ctx = getattr(model.config, "max_position_embeddings", None) or spec.context_length
        self.context_length = min(spec.context_length, model_ctx)
        self.eos_ids = _eos_ids(model, tokenizer)
        self.torch_runner = TorchRunner(model, max_batch_size=max_batch_size, prefill_chunk=prefill_chunk)
        output = OutputProcessor(
            name=spec.name,
            eos_ids=self.eos_ids,
            context_length=self.context_length,
            make_detokenizer=lambda prompt_ids: IncrementalDetokenizer(tokenizer, prompt_ids),
        )
        self.scheduler = Scheduler(self.torch_runner, output, name=spec.name, max_queue=max_queue)

    # ---- prompt handling ----------------------------------------------------------------
    def render_prompt(self, request: GenerationRequest) -> str:
        if request.messages is not None:
            if not request.messages:
                raise InvalidRequest("messages must not be empty")
            if not getattr(self.tokenizer, "chat_template", None):
                raise InvalidRequest(f"model {self.name!r} has no chat template")
            return self.tokenizer.apply_chat_template(
                list(request.messages), tokenize=False, add_generation_prompt=True
            )
        if request.prompt is None:
            raise InvalidRequest("either messages or prompt is required")
        return request.prompt

    def encode(self, request: GenerationRequest) -> list[int]:
        text = self.render_prompt(request)
        # chat templates already contain any special tokens they need
        ids = self.tokenizer(text, add_special_tokens=request.messages is None)["input_ids"]
        if not ids:
            bos = self.tokenizer.bos_token_id
            if bos is None:
                raise InvalidRequest("prompt is empty")
            ids = [bos]
        return list(ids)


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (gen_eos, model.config.eos_token_id, tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif value:
            ids.update(value)
    return ids


def _on_own_thread(fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """`fn(*args)` on a new thread that ends with it.

    Torch's OpenMP worker pool belongs to the thread that runs an op and lives as long as it.
    libgomp counts the threads of every pool in the process, and once they outnumber the CPUs it
    stops spinning at barriers in every team, llama.cpp's included: each decode step then sleeps
    and wakes at its ~230 barriers (measured on 2 cores after one embedding on a pool thread:
    238 context switches and +40% time per step). The pool of a thread that has ended is gone.
    """
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="torch-work")
    try:
        return asyncio.get_running_loop().run_in_executor(executor, fn, *args)
    finally:
        executor.shutdown(wait=False)  # its thread ends after fn


class SentenceEmbedder(Embedder):
    """Mean-pooled, L2-normalised sentence embeddings (all-MiniLM-L6-v2 and similar).

    Inputs longer than the model's limit (sentence-transformers' max_seq_length when the model dir
    has one, else the tokenizer/position-embedding limit: 256 word pieces for MiniLM) are truncated
    silently, as sentence-transformers does; prompt_tokens counts what was actually embedded.
    """

    def __init__(
        self, spec: ModelSpec, model: Any, tokenizer: Any, *, batch_size: int = 32, max_length: int | None = None
    ):
        self.name = spec.name
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        limit = getattr(model.config, "max_position_embeddings", 512)
        tok_max = getattr(tokenizer, "model_max_length", limit) or limit
        self.context_length = min(limit, tok_max, max_length or limit, spec.context_length)
        self.dimensions = int(model.config.hidden_size)
        self.device = next(model.parameters()).device
        self._lock = threading.Lock()
        self._busy = 0

    async def embed(self, texts: list[str], progress: EmbedProgress | None = None) -> EmbeddingResult:
        if not texts:
            raise InvalidRequest("input must not be empty")
        if not all(isinstance(t, str) for t in texts):
            raise InvalidRequest("input must be strings")
        progress = progress or EmbedProgress()
        self._busy += 1
        try:
            work = _on_own_thread(self.embed_sync, texts, progress)
            try:
                return await asyncio.shield(work)
            except asyncio.CancelledError:
                # The caller left: stop after the current batch, and wait for it so that
                # progress.prompt_tokens counts everything that ran.
                progress.cancelled.set()
                with contextlib.suppress(Exception):
                    await work
                raise
        finally:
            self._busy -= 1

    def embed_sync(self, texts: list[str], progress: EmbedProgress | None = None) -> EmbeddingResult:
        vectors: list[list[float]] = []
        tokens = 0
        with self._lock, torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                if progress is not None and progress.cancelled.is_set():
                    break
                batch = self.tokenizer(
                    texts[start : start + self.batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self.context_length,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self.model(**batch).last_hidden_state.float()
                mask = batch["attention_mask"].unsqueeze(-1).float()
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                vectors.extend(pooled.cpu().tolist())
                tokens += int(batch["attention_mask"].sum())
                if progress is not None:
                    progress.prompt_tokens = tokens
        return EmbeddingResult(vectors=vectors, prompt_tokens=tokens)

    def stats(self) -> dict:
        return {"queue_depth": max(0, self._busy - 1), "running": min(1, self._busy)}
