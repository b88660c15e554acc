"""Faults of the services the portal depends on, answered as 503 in the shape of each API.

When the database is unreachable (the connection fails or drops) a request gets a 503 with a
Retry-After, never a 500 page: OpenAI's error shape on /v1 (see inference.errors), DRF's
`{"detail"}` on the portal API and the native task endpoints, a plain page elsewhere. A shared
cache or Redis outage is not a fault here: the cache degrades to misses and the limits to
per-process counters (usage.limits), and /readyz reports it.
"""

from __future__ import annotations

import logging

from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)

# Connection-level errors only: an IntegrityError is a bug or a conflict, not an outage.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = "5"
MESSAGE = "The service is temporarily unavailable (its database cannot be reached). Retry shortly."


def is_database_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, DATABASE_UNAVAILABLE)


def _log(exc: BaseException, request: HttpRequest | None) -> None:
    path = request.path if request is not None else "?"
    logger.error("database unavailable while serving %s: %s", path, exc)


def drf_exception_handler(exc, context):
    """DRF's handler, plus: an unreachable database is a 503 {"detail"} with Retry-After, and a
    body over DATA_UPLOAD_MAX_MEMORY_SIZE a 400 {"detail"} (as on /v1), not Django's page."""
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": "The request body is too large.", "code": "request_too_large"}, status=400)
    if is_database_unavailable(exc):
        _log(exc, getattr(context.get("request"), "_request", None))
        return Response(
            {"detail": MESSAGE, "code": "service_unavailable"},
            status=503,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    return exception_handler(exc, context)


def unavailable_response(request: HttpRequest) -> HttpResponse:
    if request.path == "/v1" or request.path.startswith("/v1/"):
        from inference.errors import database_unavailable

        response: HttpResponse = database_unavailable().response()
    elif request.path.startswith("/api/"):
        response = JsonResponse({"detail": MESSAGE, "code": "service_unavailable"}, status=503)
    else:
        response = HttpResponse(MESSAGE, status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = RETRY_AFTER_SECONDS
    response._has_been_logged = True  # type: ignore[attr-defined]  # logged once, below
    return response


class DatabaseUnavailableMiddleware(MiddlewareMixin):
    """A view that raised because the database is unreachable answers 503 in its API's shape."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_database_unavailable(exception):
            return None
        _log(exception, request)
        return unavailable_response(request)
