from __future__ import annotations

from django.contrib import admin

from usage.models import UsageRecord


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    """Read-only: usage is what happened."""

    list_display = [
        "created_at",
        "user",
        "api_key",
        "endpoint",
        "model",
        "status_code",
        "prompt_tokens",
        "completion_tokens",
        "latency_ms",
        "ttft_ms",
        "cached",
        "end_user",
    ]
    list_filter = ["endpoint", "model", "status_code", "cached", "streamed"]
    list_select_related = ["user", "api_key"]
    search_fields = ["user__email", "request_id", "model", "end_user"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
