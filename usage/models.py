"""What happened: one row per inference request, written off the request path (usage.recorder)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class UsageRecord(models.Model):
    """One inference request: who, which model and endpoint, tokens, timings and outcome.

    Written in batches off the request path (usage.recorder), never one INSERT per token.
    """

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="usage_records")
    api_key = models.ForeignKey(
        "accounts.ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="usage_records"
    )
    # Set for requests on an organization's key: billed to the organization, attributed to `user`.
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, null=True, blank=True, related_name="usage_records"
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
    # The request's OpenAI `user` field: the caller's own end-user id, for their abuse tracking.
    end_user = models.CharField(max_length=256, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        db_table = "inference_usagerecord"  # created by the inference app before usage/ existed
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "created_at"], name="inference_u_user_id_0e0828_idx"),
            models.Index(fields=["api_key", "created_at"], name="inference_u_api_key_14e749_idx"),
            models.Index(fields=["user", "end_user", "created_at"], name="usage_user_end_user_idx"),
            models.Index(fields=["organization", "created_at"], name="usage_org_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.endpoint} {self.model} {self.status_code}"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class ModelPrice(models.Model):
    """What a model's tokens cost, for the spend shown on the usage dashboards (optional)."""

    model = models.CharField(max_length=200, unique=True, help_text=_("The model name, as in usage rows."))
    input_per_1k = models.DecimalField(
        max_digits=12, decimal_places=6, default=0, help_text=_("Price per 1,000 prompt tokens.")
    )
    output_per_1k = models.DecimalField(
        max_digits=12, decimal_places=6, default=0, help_text=_("Price per 1,000 completion tokens.")
    )

    class Meta:
        ordering = ["model"]

    def __str__(self) -> str:
        return self.model


class BudgetAlert(models.Model):
    """One alert sent: a budget of `scope` ("user:1", "org:2", "key:3") reached `threshold` percent
    in `period` ("2026-11"). The unique constraint makes sending idempotent across workers."""

    scope = models.CharField(max_length=64)
    period = models.CharField(max_length=7)
    threshold = models.PositiveSmallIntegerField()
    tokens = models.PositiveBigIntegerField()
    budget = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["scope", "period", "threshold"], name="one_alert_per_scope_period_threshold"
            )
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.period} {self.threshold}%"
