"""Debian's nginx (deploy/nginx/nginx.conf, rendered for loopback) in front of two portal processes
that share PostgreSQL, Redis and a Prometheus multiprocess dir, each with the real model.

Load goes through nginx, one worker is killed mid-load, and: no non-streaming request is lost
(nginx retries inference POSTs that the dead worker never answered, see the config), nothing is
billed twice, limits and a revocation hold whichever worker answers, the client address nginx
saw is the one the key's IP allow-list checks, the playground websocket and SSE streams pass
through, and /metrics adds up both workers.

Runs in the PostgreSQL + Redis pass of CI (DATABASE_URL/REDIS_URL set); on the SQLite defaults it
is skipped: several workers on one SQLite file and per-process caches is not a scale-out.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.deploy.nginx import nginx_binary, render_nginx_conf
from tests.e2e.conftest import PortalServer, base_env, free_port, fresh_postgres_url, start_server, wait_until_ready

pytestmark = pytest.mark.e2e
MODEL = "SmolLM2-135M-Instruct"
METRICS_TOKEN = "e2e-metrics-token"
CLIENT_IP = "127.0.0.5"  # the test's own loopback source address, as nginx sees it


@dataclass
class Cluster:
    url: str  # nginx
    workers: list[subprocess.Popen]
    worker_ports: list[int]
    portal: PortalServer  # for manage.py against the shared database
    access_log: Path

    def served_by(self) -> list[str]:
        """The upstream(s) of each request in nginx's access log, in order."""
        return re.findall(r"upstream=(\S+(?:, \S+)*) ustatus", self.access_log.read_text())


def _suite_services() -> tuple[str, str]:
    database_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not database_url.startswith("postgres") or not redis_url:
        pytest.skip("scale-out needs the PostgreSQL + Redis run (DATABASE_URL=postgres://..., REDIS_URL=redis://...)")
    if nginx_binary() is None:
        pytest.skip("Debian's nginx is not installed (`make nginx`)")
    return database_url, redis_url


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    database_url, redis_url = _suite_services()
    name = database_url.rsplit("/", 1)[1].split("?")[0] or "llmos"
    work = Path(tempfile.mkdtemp(prefix="llmos-scale-"))
    work.chmod(0o755)  # nginx's workers (nobody when started as root) create temp files under it
    metrics_dir = work / "metrics"
    metrics_dir.mkdir()
    env = base_env()
    env.update(
        {
            "DATABASE_URL": fresh_postgres_url(database_url, f"{name}_scale_out"),
            "REDIS_URL": redis_url,
            "CACHE_KEY_PREFIX": f"scale-{uuid.uuid4().hex[:8]}",  # fresh limits and caches, no flush
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "METRICS_TOKEN": METRICS_TOKEN,
            "TRUSTED_PROXIES": "127.0.0.1",
            "INFERENCE_PRELOAD": "true",
            "INFERENCE_TORCH_THREADS": "1",
            "RESPONSE_CACHE_SECONDS": "0",
        }
    )
    portal = PortalServer(url="", env=env, log_dir=work)
    portal.manage("migrate", "--noinput")
    portal.manage("prepare_models")  # convert once here, not twice at once in the workers
    ports = [free_port(), free_port()]
    workers = [start_server(env, port, work / f"worker{i}.log") for i, port in enumerate(ports)]
    nginx_port = free_port()
    conf = render_nginx_conf(
        prefix=work / "nginx", listen=f"127.0.0.1:{nginx_port}", upstreams=[f"127.0.0.1:{p}" for p in ports]
    )
    (work / "nginx").chmod(0o755)
    nginx = subprocess.Popen(
        [nginx_binary() or "nginx", "-p", str(work / "nginx"), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=(work / "nginx.stderr").open("wb"),
    )
    try:
        for port, worker in zip(ports, workers, strict=True):
            wait_until_ready(f"http://127.0.0.1:{port}", worker, timeout=240)
        wait_until_ready(f"http://127.0.0.1:{nginx_port}", nginx, path="/healthz", timeout=30)
        portal.url = f"http://127.0.0.1:{nginx_port}"
        yield Cluster(portal.url, workers, ports, portal, work / "nginx" / "access.log")
    except Exception:
        for path in sorted(work.glob("*.log")) + [work / "nginx" / "error.log"]:
            if path.exists():
                print(path, path.read_text()[-3000:])
        raise
    finally:
        nginx.terminate()
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
        for process in (nginx, *workers):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)


def _client(source: str = CLIENT_IP) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=120)


def test_limits_and_revocation_hold_whichever_worker_answers(cluster):
    key = cluster.portal.create_user_and_key("limits@example.com", plan="four-a-minute")
    cluster.portal.manage(
        "shell",
        "-c",
        "from accounts.models import Plan; Plan.objects.filter(name='four-a-minute').update(requests_per_minute=4)",
    )
    headers = {"Authorization": f"Bearer {key}"}
    before = len(cluster.served_by())
    with _client() as client:
        remaining = []
        for _ in range(4):
            response = client.get(f"{cluster.url}/v1/models", headers=headers)
            assert response.status_code == 200, response.text
            remaining.append(int(response.headers["x-ratelimit-remaining-requests"]))
        assert remaining == [3, 2, 1, 0]  # one counter in Redis, whichever worker answered
        for _ in range(2):
            refused = client.get(f"{cluster.url}/v1/models", headers=headers)
            assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limit_exceeded"
    time.sleep(0.3)  # nginx logs a request just after answering it
    assert set(cluster.served_by()[before:]) == {f"127.0.0.1:{p}" for p in cluster.worker_ports}

    other = cluster.portal.create_user_and_key("revoked@example.com")
    headers = {"Authorization": f"Bearer {other}"}
    with _client() as client:
        for _ in range(2):  # the key is now cached in both workers
            assert client.get(f"{cluster.url}/v1/models", headers=headers).status_code == 200
        cluster.portal.manage(
            "shell",
            "-c",
            "from accounts import services; from accounts.models import ApiKey; "
            "services.api_key_revoke(api_key=ApiKey.objects.get(user__email='revoked@example.com'))",
        )
        for _ in range(2):
            assert client.get(f"{cluster.url}/v1/models", headers=headers).status_code == 401


def test_key_ip_allow_list_sees_the_client_address_not_nginx_nor_a_forged_header(cluster):
    key = cluster.portal.create_user_and_key("ips@example.com")
    cluster.portal.manage(
        "shell",
        "-c",
        f"from accounts.models import ApiKey; ApiKey.objects.filter(user__email='ips@example.com')"
        f".update(allowed_ips=['{CLIENT_IP}'])",
    )
    with _client(CLIENT_IP) as client:
        allowed = client.get(f"{cluster.url}/v1/models", headers={"Authorization": f"Bearer {key}"})
    assert allowed.status_code == 200
    with _client("127.0.0.6") as client:
        forged = client.get(
            f"{cluster.url}/v1/models", headers={"Authorization": f"Bearer {key}", "X-Forwarded-For": CLIENT_IP}
        )
    assert forged.status_code == 403, forged.text


def test_request_id_is_kept_or_made_by_nginx(cluster):
    with _client() as client:
        mine = client.get(f"{cluster.url}/healthz", headers={"X-Request-Id": "req-from-client-1"})
        made = client.get(f"{cluster.url}/healthz")
    assert mine.headers["x-request-id"] == "req-from-client-1"
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])  # nginx's $request_id


def test_playground_websocket_and_sse_stream_pass_through_nginx(cluster):
    from websockets.sync.client import connect

    cluster.portal.create_user_and_key("ws@example.com")
    session_key = cluster.portal.manage(
        "shell",
        "-c",
        "from django.contrib.sessions.backends.db import SessionStore; from accounts.models import User; "
        "user = User.objects.get(email='ws@example.com'); session = SessionStore(); "
        "session['_auth_user_id'] = str(user.pk); "
        "session['_auth_user_backend'] = 'django.contrib.auth.backends.ModelBackend'; "
        "session['_auth_user_hash'] = user.get_session_auth_hash(); session.create(); print(session.session_key)",
    ).splitlines()[-1]
    ws_url = cluster.url.replace("http://", "ws://") + "/ws/playground/"
    with connect(
        ws_url, origin=cluster.url, additional_headers={"Cookie": f"sessionid={session_key}"}, open_timeout=30
    ) as socket:
        assert json.loads(socket.recv(timeout=30))["type"] == "ready"
        generate = {"type": "generate", "mode": "chat", "model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}
        socket.send(json.dumps({**generate, "params": {"max_tokens": 4}}))
        events = []
        while not events or events[-1]["type"] not in {"done", "stopped", "error"}:
            events.append(json.loads(socket.recv(timeout=60)))
    assert [e["type"] for e in events][0] == "started" and events[-1]["type"] == "done", events

    key = cluster.portal.create_user_and_key("sse@example.com")
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Count"}], "max_tokens": 6, "stream": True}
    with _client() as client:
        with client.stream(
            "POST", f"{cluster.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]" and len(events) >= 3


def _counter(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_killing_a_worker_mid_load_loses_no_request_and_metrics_add_up_both(cluster):
    email = "load@example.com"
    key = cluster.portal.create_user_and_key(email)
    headers = {"Authorization": f"Bearer {key}"}
    total, killed_after = 60, 15
    done: list[int] = []

    def one(i: int) -> tuple[int, str]:
        body = {"model": MODEL, "messages": [{"role": "user", "content": f"Say a number: {i}"}], "max_tokens": 3}
        with _client() as client:
            response = client.post(f"{cluster.url}/v1/chat/completions", json=body, headers=headers)
        done.append(i)
        return response.status_code, response.headers.get("x-request-id", "")

    victim = cluster.workers[1]
    before = len(cluster.served_by())
    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(one, i) for i in range(total)]
        while len(done) < killed_after:
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)  # no graceful shutdown: in-flight requests die with it
        results = [future.result() for future in futures]
    assert victim.wait(timeout=10) == -signal.SIGKILL
    statuses = [status for status, _ in results]
    assert statuses == [200] * total, statuses

    time.sleep(0.3)
    served = cluster.served_by()[before:]
    dead, alive = (f"127.0.0.1:{port}" for port in reversed(cluster.worker_ports))
    assert any(u == dead for u in served) and any(u.endswith(alive) for u in served)
    print(f"{sum(', ' in u for u in served)} request(s) failed over to the other worker")  # shown with -s

    # Billed at most once per request: no request id has two usage rows (a retried request's first
    # attempt died with its worker before it was recorded).
    ids = {request_id for _, request_id in results}
    assert len(ids) == total
    rows = cluster.portal.usage_rows(email, expected=total - 6, timeout=15)
    billed = [row["request_id"] for row in rows]
    assert len(billed) == len(set(billed)) and set(billed) <= ids

    with _client() as client:
        page = client.get(f"{cluster.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert page.status_code == 200
    answered = _counter(page.text, "llmos_requests_total", endpoint="chat.completions", status="200")
    by_dead = sum(1 for u in served if u == dead)
    # The surviving worker alone answered fewer than `total`; the page counts the dead one's too.
    assert by_dead > 0 and answered >= total, (answered, by_dead)
