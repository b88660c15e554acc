from __future__ import annotations

from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    """Knowledge bases: documents split into chunks, embedded, searched by vector; OpenAI's vector
    store API under /v1, grounded answers on /api/v1/ask and in the playground."""

    name = "knowledge"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from knowledge import checks, signals  # noqa: F401 - system checks; sqlite-vec loading and vector deletion
