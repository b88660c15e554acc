from __future__ import annotations

from django.contrib import admin

from knowledge.models import Document, KnowledgeBase


class DocumentInline(admin.TabularInline):
    model = Document
    fields = ("filename", "status", "error", "chunks_total", "embedding_tokens", "bytes", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = True
    show_change_link = False


@admin.register(KnowledgeBase)
class KnowledgeBaseAdmin(admin.ModelAdmin):
    """Deleting a base here deletes its documents, chunks and vectors (knowledge.signals)."""

    list_display = ("id", "name", "user", "embedding_model", "dimensions", "created_at")
    search_fields = ("id", "name", "user__email")
    readonly_fields = ("id", "user", "embedding_model", "dimensions", "version", "created_at", "last_active_at")
    inlines = [DocumentInline]


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ("filename", "knowledge_base", "status", "chunks_total", "embedding_tokens", "created_at")
    list_filter = ("status",)
    search_fields = ("filename", "knowledge_base__id", "knowledge_base__user__email")
    readonly_fields = (
        "knowledge_base", "file", "filename", "bytes", "status", "error", "error_code", "chunks_total",
        "chunks_done", "embedding_tokens", "created_at", "finished_at",
    )  # fmt: skip
