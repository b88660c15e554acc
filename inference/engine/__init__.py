"""LLM OS Portal inference engine: plain Python, no Django imports."""

from __future__ import annotations

from .base import Embedder, TextGenerator
from .manager import ModelManager, minilm_dir, smollm2_gguf_path
from .types import (
    ContextLengthExceeded,
    EmbeddingResult,
    EngineError,
    GenerationRequest,
    InvalidRequest,
    ModelLoadError,
    ModelNotFound,
    ModelSpec,
    Overloaded,
    SamplingParams,
    TextDelta,
    UpstreamError,
)

__all__ = [
    "ContextLengthExceeded",
    "Embedder",
    "EmbeddingResult",
    "EngineError",
    "GenerationRequest",
    "InvalidRequest",
    "ModelLoadError",
    "ModelManager",
    "ModelNotFound",
    "ModelSpec",
    "Overloaded",
    "SamplingParams",
    "TextDelta",
    "TextGenerator",
    "UpstreamError",
    "minilm_dir",
    "smollm2_gguf_path",
]
