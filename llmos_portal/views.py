"""Operational endpoints: liveness and readiness. Cheap, unauthenticated, never cached."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and serving requests."""
    return JsonResponse({"status": "ok"})


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False


@never_cache
async def readyz(request: HttpRequest) -> JsonResponse:
    """Ready for traffic: the database answers and the default chat model is loaded."""
    from inference.runtime import default_model_ready

    checks = {"database": await sync_to_async(_database_ok)(), "default_model": await default_model_ready()}
    ready = all(checks.values())
    return JsonResponse({"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503)
