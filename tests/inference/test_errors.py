"""One place maps engine errors to OpenAI's error shape and HTTP status."""

from __future__ import annotations

import json

import pytest

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
from inference.errors import from_engine_error


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (ModelNotFound("x"), 404, "model_not_found"),
        (ContextLengthExceeded("too long"), 400, "context_length_exceeded"),
        (InvalidRequest("bad"), 400, None),
        (Overloaded("full"), 503, "overloaded"),
        (ModelLoadError("broken file"), 503, "model_load_error"),
        (UpstreamError("refused", status=502), 502, "upstream_error"),
        (UpstreamError("upstream answered 400: bad tool schema", status=400), 400, None),
        (NoDeploymentAvailable("every deployment is cooling down", retry_after=12), 503, "no_deployment_available"),
        (EngineError("boom"), 500, "engine_error"),
    ],
)
def test_engine_errors_map_to_openai_errors(error, status, code):
    api_error = from_engine_error(error, model="m")
    response = api_error.response()
    assert response.status_code == status
    if isinstance(error, NoDeploymentAvailable):
        assert response["Retry-After"] == "12"
    body = json.loads(response.content)
    assert set(body["error"]) == {"message", "type", "param", "code"} and body["error"]["code"] == code


def test_overloaded_tells_clients_when_to_retry():
    assert from_engine_error(Overloaded("full")).response()["Retry-After"] == "1"
