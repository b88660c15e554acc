"""Reads for accounts. Every query is scoped to its owner."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.caller import builtin_default_plan
from accounts.models import ApiKey, Plan, User


def api_keys_for_user(*, user: User) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(user=user).order_by("-created_at")


def api_key_for_user(*, user: User, key_id: int) -> ApiKey:
    """The user's own key; raises ApiKey.DoesNotExist for anyone else's (answer 404, not 403)."""
    return ApiKey.objects.select_related("user").get(user=user, pk=key_id)


def default_plan() -> Plan:
    """The plan that governs users without one: the operators' default, else the built-in limits."""
    return Plan.objects.filter(is_default=True).first() or builtin_default_plan()


def plan_for_user(*, user: User) -> Plan:
    """The plan that governs `user`: their own, else the default plan. Never "unlimited" by omission."""
    return user.plan if user.plan is not None else default_plan()


def user_with_plan(*, user_id: int, active_only: bool = False) -> User:
    """The user with `user.plan` set to the plan that governs them (the default plan, in memory
    only, for a user who has none). Raises User.DoesNotExist."""
    users = User.objects.select_related("plan")
    user = users.get(pk=user_id, is_active=True) if active_only else users.get(pk=user_id)
    if user.plan is None:
        user.plan = default_plan()
    return user
