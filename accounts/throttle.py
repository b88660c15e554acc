"""Throttles for the account pages, on django-ratelimit's counters in the shared cache.

Rates are read from settings at request time, so operators (and tests) can change them.
`blocked()` looks without counting; `count()` records one attempt. Login counts only failures,
but checks before authenticating, so a throttled attacker can't confirm a right guess.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings
from django_ratelimit.core import get_usage

LOGIN_LIMITS = {"group": "login", "by_ip": "LOGIN_RATE_PER_IP", "by_account": "LOGIN_RATE_PER_ACCOUNT"}


def _ip_key(group, request) -> str:
    from accounts.authentication import client_ip

    return client_ip(request)


def _account_key(group, request) -> str:
    data = request.data if hasattr(request, "data") else request.POST  # DRF requests carry JSON in .data
    if not isinstance(data, Mapping):
        return ""  # a JSON list or number: the serializer rejects it; count by IP only
    value = data.get("username") or data.get("email") or ""
    return value.strip().lower() if isinstance(value, str) else ""


def _rates(group: str, by_ip: str | None, by_account: str | None):
    if by_ip:
        yield f"{group}:ip", _ip_key, getattr(settings, by_ip)
    if by_account:
        yield f"{group}:account", _account_key, getattr(settings, by_account)


def _usage(request, group, key, rate, *, increment: bool):
    if key(group, request) == "":
        return None
    return get_usage(request, group=group, key=key, rate=rate, method="POST", increment=increment)


def blocked(request, *, group: str, by_ip: str | None = None, by_account: str | None = None) -> bool:
    """True if the attempts already counted reach any of the limits."""
    for name, key, rate in _rates(group, by_ip, by_account):
        usage = _usage(request, name, key, rate, increment=False)
        if usage and usage["count"] >= usage["limit"]:
            return True
    return False


def count(request, *, group: str, by_ip: str | None = None, by_account: str | None = None) -> None:
    for name, key, rate in _rates(group, by_ip, by_account):
        _usage(request, name, key, rate, increment=True)


def too_many(request, **limits) -> bool:
    """Check, then count this attempt: for actions where every attempt counts (signup, reset)."""
    if blocked(request, **limits):
        return True
    count(request, **limits)
    return False
