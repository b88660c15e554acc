"""Operational endpoints: liveness and readiness. Cheap, unauthenticated, never cached."""

from __future__ import annotations

import hmac
import logging
import uuid

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and serving requests."""
    return JsonResponse({"status": "ok"})


logger = logging.getLogger(__name__)


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception as exc:
        logger.warning("readiness: the database is unreachable: %s", exc)
        connection.close_if_unusable_or_obsolete()
        return False


def _cache_ok() -> bool:
    """A round trip through the shared cache (Redis when REDIS_URL is set). django-redis is set to
    swallow errors (a miss), so a value that doesn't come back is how an outage shows."""
    probe = uuid.uuid4().hex
    try:
        cache.set("readyz-probe", probe, 10)
        return cache.get("readyz-probe") == probe
    except Exception as exc:
        logger.warning("readiness: the cache is unreachable: %s", exc)
        return False


async def _default_model_status() -> dict:
    from inference import runtime

    try:
        return await runtime.default_model_status()
    except Exception as exc:  # the registry is read from the database
        logger.warning("readiness: cannot check the default model: %s", exc)
        return {"ready": False, "runner": None, "fallback": None}


@never_cache
async def readyz(request: HttpRequest) -> JsonResponse:
    """Ready for traffic: the database answers and the default chat model is loaded (else 503).
    The shared cache (Redis) being down is reported, but the portal still serves (degraded): the
    cache falls back to misses and the limits to per-process counters. `default_model_runner`
    says which runner serves the default model, and `warnings` why it is not the configured one
    (llama.cpp could not be imported, say): still ready, but slower than it should be."""
    database = await sync_to_async(_database_ok)()
    model = await _default_model_status() if database else {"ready": False, "runner": None, "fallback": None}
    checks = {
        "database": database,
        "cache": await sync_to_async(_cache_ok)(),
        "default_model": model["ready"],
    }
    ready = checks["database"] and checks["default_model"]
    status = "ready" if all(checks.values()) else "degraded" if ready else "not ready"
    body: dict = {"status": status, "checks": checks, "down": [name for name, ok in checks.items() if not ok]}
    body["default_model_runner"] = model["runner"]
    if model["fallback"]:
        body["warnings"] = [f"{settings.DEFAULT_CHAT_MODEL} runs on {model['runner']}: {model['fallback']}"]
    response = JsonResponse(body, status=200 if ready else 503)
    # "not ready yet" is an answer, not a server error for django.request to log
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def _may_read_metrics(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        presented = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        # Bytes: compare_digest refuses non-ASCII str, and a header can hold any latin-1 text.
        if presented and hmac.compare_digest(presented.encode("utf-8", "replace"), token.encode("utf-8")):
            return True
    return request.user.is_authenticated and request.user.is_staff


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format, for staff sessions or `Authorization: Bearer $METRICS_TOKEN`."""
    from prometheus_client import CONTENT_TYPE_LATEST

    from inference.metrics import EngineCollector
    from usage.metrics import exposition

    if not _may_read_metrics(request):
        return HttpResponse("Forbidden: staff or the metrics token only.\n", status=403, content_type="text/plain")
    return HttpResponse(exposition(EngineCollector()), content_type=CONTENT_TYPE_LATEST)


@csrf_exempt
def api_not_found(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"detail": "Not found."}, status=404)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404 in the shape of the API asked (DRF's {"detail"} under /api/), else Django's page."""
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return api_not_found(request)
    return page_not_found(request, exception or Exception("Not found"))
