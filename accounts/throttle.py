"""Throttles for the account pages (login, the admin's login, signup, password reset), on
django-ratelimit's counters in the shared cache.

Rates are read from settings at request time, so operators (and tests) can change them.
`blocked()` looks without counting; `count()` records one attempt. Login counts only failures,
but checks before authenticating, so a throttled attacker can't confirm a right guess.

If the shared cache (Redis) is unreachable the throttles fall back to this process's own counters
(and log it) instead of switching off; Redis is tried again after a short pause. The counters use
the `ratelimit` cache alias: the same Redis as the default cache, but one that raises on errors
instead of hiding them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

from django.conf import settings
from django_ratelimit.core import _split_rate, get_usage

logger = logging.getLogger(__name__)

REDIS_RETRY_SECONDS = 5.0


class _LocalCounters:
    """Fixed-window counters in this process: the fallback while the shared cache is down."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, tuple[int, float]] = {}
        self.down_until = 0.0

    def usage(self, name: str, value: str, rate: str, *, increment: bool) -> dict:
        limit, period = _split_rate(rate)
        now = time.time()
        key = f"{name}:{value}:{rate}:{int(now // period)}"
        with self._lock:
            if len(self._values) > 10_000:
                self._values = {k: item for k, item in self._values.items() if item[1] > now}
            count, expires = self._values.get(key, (0, 0.0))
            count = count if expires > now else 0
            if increment:
                count += 1
                self._values[key] = (count, now + period)
        return {"count": count, "limit": limit}

    def reset(self) -> None:
        with self._lock:
            self._values.clear()
            self.down_until = 0.0


local_counters = _LocalCounters()

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
    value = key(group, request)
    if value == "":
        return None
    if time.monotonic() >= local_counters.down_until:
        try:
            usage = get_usage(request, group=group, key=key, rate=rate, method="POST", increment=increment)
        except Exception as exc:  # the shared cache is unreachable
            logger.warning("cache unreachable for login/signup throttles (%s); using per-process counters", exc)
            local_counters.down_until = time.monotonic() + REDIS_RETRY_SECONDS
        else:
            if usage is not None and usage.get("limit"):
                return usage
            # django-ratelimit reports a cache failure as a zero limit: treat it as an outage.
            logger.warning("cache failed for login/signup throttles; using per-process counters")
            local_counters.down_until = time.monotonic() + REDIS_RETRY_SECONDS
    return local_counters.usage(group, value, rate, increment=increment)


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
