from __future__ import annotations

from django.contrib import admin

from usage.models import BudgetAlert, ModelPrice, UsageRecord


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    """Read-only: usage is what happened."""

    list_display = [
        "created_at",
        "user",
        "organization",
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
    list_select_related = ["user", "api_key", "organization"]
    search_fields = ["user__email", "request_id", "model", "end_user"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    """Prices per 1,000 tokens: the usage dashboards show spend for the models that have one."""

    list_display = ["model", "input_per_1k", "output_per_1k"]
    search_fields = ["model"]


@admin.register(BudgetAlert)
class BudgetAlertAdmin(admin.ModelAdmin):
    """Alerts sent (80 % and 100 % of a monthly budget); read-only."""

    list_display = ["created_at", "scope", "period", "threshold", "tokens", "budget"]
    list_filter = ["period", "threshold"]
    search_fields = ["scope"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
