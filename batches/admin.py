from __future__ import annotations

from django.contrib import admin

from batches.models import Batch, File


@admin.register(File)
class FileAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "filename", "purpose", "bytes", "line_count", "created_at")
    list_filter = ("purpose",)
    search_fields = ("id", "filename", "user__email")
    exclude = ("content", "data")
    readonly_fields = ("id", "user", "filename", "purpose", "bytes", "line_count", "created_at")


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "endpoint", "status", "total", "completed", "failed", "created_at")
    list_filter = ("status", "endpoint")
    search_fields = ("id", "user__email")
    raw_id_fields = ("user", "api_key", "input_file", "output_file", "error_file")
