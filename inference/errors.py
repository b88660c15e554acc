"""The one place that maps domain errors to the OpenAI error shape and HTTP status.

`{"error": {"message", "type", "param", "code"}}` — what OpenAI SDKs parse into typed exceptions.
"""

from __future__ import annotations

import re

from django.http import JsonResponse

from accounts.exceptions import ApiKeyRejected
from inference.engine.types import (
    ContextLengthExceeded,
    EngineError,
    InvalidRequest,
    ModelLoadError,
    ModelNotFound,
    NoDeploymentAvailable,
    Overloaded,
    UpstreamError,
)
from usage.metering import LimitExceeded

_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+")


def _without_urls(text: str) -> str:
    """An engine message with any URL replaced: upstream URLs can carry credentials."""
    return _URL.sub("<upstream>", text)


class ApiError(Exception):
    """An error the /v1 API answers with. Raise it anywhere below a view."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JsonResponse:
        response = JsonResponse(self.body(), status=self.status)
        for name, value in self.headers.items():
            response[name] = value
        return response


def invalid(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(message, status=400, type="invalid_request_error", param=param, code=code)


def model_not_found(name: str) -> ApiError:
    return ApiError(
        f"The model `{name}` does not exist or you do not have access to it.",
        status=404,
        type="invalid_request_error",
        param="model",
        code="model_not_found",
    )


def database_unavailable() -> ApiError:
    """503 while the database cannot be reached: keys and limits cannot be checked."""
    return ApiError(
        "The service is temporarily unavailable. Retry shortly.",
        status=503,
        type="server_error",
        code="service_unavailable",
        headers={"Retry-After": "5"},
    )


def from_api_key_rejection(exc: ApiKeyRejected) -> ApiError:
    if exc.status == 403:
        return ApiError(str(exc), status=403, type="permission_error", code=exc.code)
    return ApiError(str(exc), status=401, type="invalid_request_error", code="invalid_api_key")


def from_limit_exceeded(exc: LimitExceeded) -> ApiError:
    """429 with Retry-After, its type saying what ran out, as OpenAI does: `requests` (a requests
    per minute window, code `rate_limit_exceeded`; or concurrency, `concurrency_limit_exceeded`),
    `tokens` (a tokens per minute window, `rate_limit_exceeded`) or `insufficient_quota` (the daily
    token budget); 400 `prompt_too_long` for a prompt over the plan's cap."""
    if exc.status == 400:
        return ApiError(exc.message, status=400, type="invalid_request_error", code=exc.code)
    error_type = "insufficient_quota" if exc.code == "insufficient_quota" else exc.limit
    return ApiError(exc.message, status=exc.status, type=error_type, code=exc.code, headers=exc.headers)


def from_engine_error(exc: EngineError, *, model: str = "") -> ApiError:
    if isinstance(exc, ModelNotFound):
        return model_not_found(model or str(exc))
    if isinstance(exc, ContextLengthExceeded):
        return invalid(str(exc), param="messages", code="context_length_exceeded")
    if isinstance(exc, InvalidRequest):
        return invalid(str(exc))
    if isinstance(exc, Overloaded):
        return ApiError(
            "The model is overloaded with other requests. Retry shortly.",
            status=503,
            type="server_error",
            code="overloaded",
            headers={"Retry-After": "1"},
        )
    if isinstance(exc, ModelLoadError):
        return ApiError(
            f"The model could not be loaded: {_without_urls(str(exc))}",
            status=503,
            type="server_error",
            code="model_load_error",
        )
    if isinstance(exc, NoDeploymentAvailable) and exc.status == 503:
        return ApiError(
            "Every server of this model is failing; retry shortly.",
            status=503,
            type="server_error",
            code="no_deployment_available",
            headers={"Retry-After": str(max(1, int(exc.retry_after)))},
        )
    if isinstance(exc, UpstreamError) and exc.status in (400, 422):
        # The upstream refused the request itself (e.g. a tool schema it cannot use): the
        # client's to fix, with the upstream's reason.
        return invalid(f"The upstream model server refused the request: {_without_urls(str(exc))}")
    if isinstance(exc, UpstreamError):
        return ApiError(
            f"The upstream model server failed: {_without_urls(str(exc))}",
            status=502,
            type="server_error",
            code="upstream_error",
        )
    return ApiError("The model failed to generate a response.", status=500, type="server_error", code=exc.code)
