"""Reads for accounts. Every query is scoped to its owner."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import ApiKey, User


def api_keys_for_user(*, user: User) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(user=user).order_by("-created_at")


def api_key_for_user(*, user: User, key_id: int) -> ApiKey:
    """The user's own key; raises ApiKey.DoesNotExist for anyone else's (answer 404, not 403)."""
    return ApiKey.objects.select_related("user").get(user=user, pk=key_id)
