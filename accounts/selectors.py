"""Reads for accounts. Every query is scoped to its owner."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.caller import builtin_default_plan
from accounts.models import ApiKey, Organization, Plan, User


def api_keys_for_user(*, user: User) -> QuerySet[ApiKey]:
    """The user's personal keys (not those they created in an organization)."""
    return ApiKey.objects.filter(user=user, organization__isnull=True).order_by("-created_at")


def api_key_for_user(*, user: User, key_id: int) -> ApiKey:
    """The user's own personal key; raises ApiKey.DoesNotExist for anyone else's (answer 404, not
    403). Organization keys are managed through accounts.org_selectors."""
    return ApiKey.objects.select_related("user").get(user=user, organization__isnull=True, pk=key_id)


def default_plan() -> Plan:
    """The plan that governs users without one: the operators' default, else the built-in limits."""
    return Plan.objects.filter(is_default=True).first() or builtin_default_plan()


def plan_for_user(*, user: User) -> Plan:
    """The plan that governs `user`: their own, else the default plan. Never "unlimited" by omission."""
    return user.plan if user.plan is not None else default_plan()


def plan_for_organization(*, organization: Organization) -> Plan:
    """The plan that governs an organization's keys: its own, else the default plan."""
    return organization.plan if organization.plan is not None else default_plan()


def user_with_plan(*, user_id: int, active_only: bool = False) -> User:
    """The user with `user.plan` set to the plan that governs them (the default plan, in memory
    only, for a user who has none). Raises User.DoesNotExist."""
    users = User.objects.select_related("plan")
    user = users.get(pk=user_id, is_active=True) if active_only else users.get(pk=user_id)
    if user.plan is None:
        user.plan = default_plan()
    return user


def session_is_current(*, session_key: str | None, user_id: int) -> bool:
    """True while the session `session_key` still signs in `user_id`: not logged out or flushed,
    the user still active, and the session's auth hash still the user's (a password change or
    "log out everywhere" ends it). Read fresh from the session store, not from a cached copy."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
    from django.utils.crypto import constant_time_compare

    if not session_key:
        return False
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)
    data = store.load()  # an empty dict for a missing or expired session
    if str(data.get(SESSION_KEY, "")) != str(user_id):
        return False
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return False
    session_hash = data.get(HASH_SESSION_KEY) or ""
    return constant_time_compare(session_hash, user.get_session_auth_hash()) or any(
        constant_time_compare(session_hash, fallback) for fallback in user.get_session_auth_fallback_hash()
    )
