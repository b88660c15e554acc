"""Two server processes on loopback sharing PostgreSQL and Redis: one rate limit holds across
both, and a revocation in one is seen by the other at once."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import (
    PortalServer,
    base_env,
    free_port,
    fresh_postgres_url,
    start_server,
    wait_until_ready,
)

pytestmark = pytest.mark.e2e
POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
REDIS = "redis://127.0.0.1:6379/2"


def _reachable(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory) -> Iterator[list[PortalServer]]:
    if not (_reachable(5432) and _reachable(6379)):
        pytest.skip("needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379")
    import redis

    redis.Redis.from_url(REDIS).flushdb()
    env = base_env()
    env.update({"DATABASE_URL": fresh_postgres_url(POSTGRES, "llmos_e2e_shared"), "REDIS_URL": REDIS})
    env["INFERENCE_PRELOAD"] = "false"
    tmp_dir = tmp_path_factory.mktemp("shared")
    servers, processes = [], []
    PortalServer(url="", env=env).manage("migrate", "--noinput")
    try:
        for index in range(2):
            port = free_port()
            process = start_server(env, port, tmp_dir / f"server{index}.log")
            processes.append(process)
            servers.append(PortalServer(url=f"http://127.0.0.1:{port}", env=env))
        for server, process in zip(servers, processes, strict=True):
            wait_until_ready(server.url, process, timeout=60, path="/healthz")
        yield servers
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=15)


def test_one_rate_limit_holds_across_two_processes(two_servers):
    first, second = two_servers
    key = first.create_user_and_key("shared@example.com", plan="four-a-minute")
    first.manage(
        "shell",
        "-c",
        "from accounts.models import Plan; Plan.objects.filter(name='four-a-minute').update(requests_per_minute=4)",
    )
    headers = {"Authorization": f"Bearer {key}"}
    remaining = []
    for server in (first, second, first, second):
        response = httpx.get(f"{server.url}/v1/models", headers=headers)
        assert response.status_code == 200
        remaining.append(int(response.headers["x-ratelimit-remaining-requests"]))
    assert remaining == [3, 2, 1, 0]  # one counter, whichever process answers
    for server in (first, second):
        refused = httpx.get(f"{server.url}/v1/models", headers=headers)
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limit_exceeded"


def test_revocation_in_one_process_is_seen_by_the_other(two_servers):
    first, second = two_servers
    key = first.create_user_and_key("revoker@example.com")
    headers = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"{second.url}/v1/models", headers=headers).status_code == 200  # cached there now
    first.manage(
        "shell",
        "-c",
        "from accounts import services; from accounts.models import ApiKey; "
        "services.api_key_revoke(api_key=ApiKey.objects.get(user__email='revoker@example.com'))",
    )
    assert httpx.get(f"{second.url}/v1/models", headers=headers).status_code == 401
