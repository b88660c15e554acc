"""Settings-wide system checks: per-process state (cache, channel layer) with several workers."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.checks import Warning, register


def _worker_count() -> int:
    for name in ("WEB_CONCURRENCY", "WORKERS"):
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


@register()
def check_shared_state_with_many_workers(app_configs=None, **kwargs):
    if _worker_count() <= 1:
        return []
    warnings = []
    if "locmem" in settings.CACHES["default"]["BACKEND"].lower():
        warnings.append(
            Warning(
                "Several workers with a per-process cache: rate limits and key revocations are not shared.",
                hint="Set REDIS_URL so every worker uses the same Redis cache.",
                id="llmos_portal.W001",
            )
        )
    if settings.CHANNEL_LAYERS["default"]["BACKEND"].endswith("InMemoryChannelLayer"):
        warnings.append(
            Warning(
                "Several workers with the in-memory channel layer: websocket groups are not shared.",
                hint="Set REDIS_URL to use channels-redis.",
                id="llmos_portal.W002",
            )
        )
    return warnings
