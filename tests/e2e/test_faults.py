"""A real server whose database is unreachable (a closed port) answers 503 in each API's shape.

The server starts without its database (nothing at start-up needs it), so every request that
needs a key, a user or the registry meets the outage: /readyz says what is down, /v1 answers
OpenAI's error shape, the native tasks and the portal API DRF's {"detail"}; never a 500 or a page.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import base_env, free_port, start_server, wait_until_ready

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server_without_database(tmp_path_factory) -> Iterator[str]:
    env = base_env()
    env.pop("REDIS_URL", None)
    env.update(
        {
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/gone",  # nothing listens there
            "INFERENCE_PRELOAD": "false",
        }
    )
    port = free_port()
    log_path = tmp_path_factory.mktemp("no-db") / "server.log"
    process = start_server(env, port, log_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process, timeout=60, path="/healthz")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except Exception:
            process.kill()
        print(log_path.read_text()[-3000:])


def a_key() -> str:
    from accounts.keys import generate_key

    return generate_key()  # well-formed, so the server must look it up


def test_readyz_is_503_and_names_the_database(server_without_database):
    response = httpx.get(f"{server_without_database}/readyz", timeout=30)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"] is False and "database" in body["down"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/models", None),
        ("POST", "/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        ("POST", "/v1/embeddings", {"model": "m", "input": "hi"}),
    ],
)
def test_v1_is_503_in_openai_shape(server_without_database, method, path, body):
    response = httpx.request(
        method,
        f"{server_without_database}{path}",
        json=body,
        headers={"Authorization": f"Bearer {a_key()}"},
        timeout=30,
    )
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["retry-after"] and response.headers["x-request-id"]
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "server_error" and error["code"] == "service_unavailable"


@pytest.mark.parametrize(
    ("path", "body", "auth"),
    [
        ("/api/v1/generate", {"prompt": "hi"}, True),
        ("/api/v1/classify", {"text": "x", "labels": ["a", "b"]}, True),
        ("/api/token/", {"username": "someone@example.com", "password": "whatever-long-1"}, False),
        ("/api/token/refresh/", {"refresh": "x.y.z"}, False),
    ],
)
def test_native_and_portal_api_are_503_in_drf_shape(server_without_database, path, body, auth):
    headers = {"Authorization": f"Bearer {a_key()}"} if auth else {}
    response = httpx.post(f"{server_without_database}{path}", json=body, headers=headers, timeout=30)
    if path == "/api/token/refresh/":  # a malformed token is refused before any query
        assert response.status_code == 401, response.text
        return
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"]
    assert "detail" in response.json()


def test_a_signed_in_page_is_503_not_a_500(server_without_database):
    response = httpx.get(
        f"{server_without_database}/console/", cookies={"sessionid": "x" * 32}, follow_redirects=False, timeout=30
    )
    assert response.status_code == 503, response.text[:300]
