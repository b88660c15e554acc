"""/healthz, /readyz and /metrics."""

from __future__ import annotations

import pytest
from django.test import override_settings

from tests.inference.helpers import call


def test_healthz_is_cheap_and_public(client, db, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.model
def test_readyz_reports_database_and_default_model(db, owner_key):
    # Loading the default model through the API makes the process ready.
    call("POST", "/v1/completions", owner_key, {"model": "SmolLM2-135M-Instruct", "prompt": "Hi", "max_tokens": 1})
    result = call("GET", "/readyz")
    assert result.status == 200
    assert result.json() == {
        "status": "ready",
        "checks": {"database": True, "cache": True, "default_model": True},
        "down": [],
        "default_model_runner": "llama_cpp",
    }


def test_readyz_says_when_the_default_model_fell_back_to_another_runner(db, monkeypatch):
    async def fell_back() -> dict:
        return {"ready": True, "runner": "transformers", "fallback": "llama_cpp cannot be imported (ImportError)"}

    monkeypatch.setattr("inference.runtime.default_model_status", fell_back)
    body = call("GET", "/readyz").json()
    assert body["status"] == "ready" and body["default_model_runner"] == "transformers"
    assert body["warnings"] == [
        "SmolLM2-135M-Instruct runs on transformers: llama_cpp cannot be imported (ImportError)"
    ]


def test_a_missing_llama_cpp_is_a_system_check_warning(monkeypatch):
    from inference import checks
    from inference.engine import manager

    def broken():
        raise ImportError("libllama.so: cannot open shared object file")

    monkeypatch.setattr(manager, "load_llama_cpp", broken)
    (warning,) = checks.check_llama_cpp_importable()
    assert warning.id == "inference.W001" and "libllama.so" in warning.msg


@override_settings(DEFAULT_CHAT_MODEL="not-registered")
def test_readyz_is_503_until_the_default_model_is_there(db):
    result = call("GET", "/readyz")
    assert result.status == 503 and result.json()["checks"]["default_model"] is False
    assert result.json()["down"] == ["default_model"]


def test_metrics_are_not_public(client, owner_client, db):
    assert client.get("/metrics").status_code == 403
    assert owner_client.get("/metrics").status_code == 403


@pytest.mark.model
def test_metrics_for_staff_show_requests_tokens_latency_and_engine_state(client, operator, owner_key):
    call("POST", "/v1/completions", owner_key, {"model": "SmolLM2-135M-Instruct", "prompt": "Hi", "max_tokens": 2})
    client.force_login(operator)
    response = client.get("/metrics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert 'llmos_requests_total{endpoint="completions",model="SmolLM2-135M-Instruct",status="200"}' in text
    assert 'llmos_tokens_total{direction="out",model="SmolLM2-135M-Instruct"}' in text
    assert "llmos_time_to_first_token_seconds_bucket" in text
    assert "llmos_request_latency_seconds_bucket" in text
    assert 'llmos_model_loaded{model="SmolLM2-135M-Instruct",state="ready"} 1.0' in text
    assert 'llmos_queue_depth{model="SmolLM2-135M-Instruct"}' in text
    assert 'llmos_running_batch_size{model="SmolLM2-135M-Instruct"}' in text


@override_settings(METRICS_TOKEN="scrape-me-please")
def test_metrics_with_the_scrape_token(client, db):
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me-please").status_code == 200
