"""A 50-line batch through the official openai SDK, run by a real Celery worker on RabbitMQ; the
worker is killed mid-batch and started again, and the output file is complete with every line
billed once (one usage row per line, endpoint "batch")."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    ROOT,
    PortalServer,
    base_env,
    free_port,
    fresh_postgres_url,
    start_server,
    wait_until_ready,
)

pytestmark = pytest.mark.e2e
BROKER = os.environ.get("E2E_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
MODEL = "SmolLM2-135M-Instruct"
LINES = 50


def _reachable(url: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((parts.hostname or "127.0.0.1", parts.port or 5672)) == 0


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "batches.celery", "worker", "--concurrency", "1", "--loglevel", "INFO"],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the test kills parent and child together
    )


@pytest.fixture(scope="module")
def batch_stack(tmp_path_factory) -> Iterator[tuple[PortalServer, dict[str, str], Path]]:
    if not _reachable(BROKER):
        pytest.skip(f"needs a RabbitMQ broker at {BROKER}")
    tmp_dir = tmp_path_factory.mktemp("batches")
    env = base_env()
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url.startswith("postgres"):  # a database of its own, named after the suite's
        name = database_url.rsplit("/", 1)[1].split("?")[0] or "llmos"
        env["DATABASE_URL"] = fresh_postgres_url(database_url, f"{name}_batches")
    else:
        env["DATABASE_URL"] = f"sqlite:///{tmp_dir / 'batches.sqlite3'}"
    if os.environ.get("REDIS_URL"):  # the suite's Redis db, under a prefix of its own (no flush)
        env["CACHE_KEY_PREFIX"] = f"batches-{uuid.uuid4().hex[:8]}"
    queue = f"llmos-batches-e2e-{uuid.uuid4().hex[:8]}"  # no stale jobs, nobody else's
    env.update(
        {
            "BROKER_URL": BROKER,
            "BATCH_QUEUE": queue,
            "INFERENCE_PRELOAD": "false",  # the server only stores files and batches here
            "INFERENCE_TORCH_THREADS": "1",
            "RESPONSE_CACHE_SECONDS": "0",
        }
    )
    port = free_port()
    server = PortalServer(url=f"http://127.0.0.1:{port}", env=env, log_dir=tmp_dir)
    server.manage("migrate", "--noinput")
    process = start_server(env, port, tmp_dir / "server.log")
    try:
        wait_until_ready(server.url, process, path="/healthz", timeout=60)
        yield server, env, tmp_dir
    finally:
        process.terminate()
        process.wait(timeout=15)
        from kombu import Connection

        with Connection(BROKER) as connection:
            connection.default_channel.queue_delete(queue)


def _counts(client, batch_id: str) -> tuple[str, int]:
    batch = client.batches.retrieve(batch_id)
    return batch.status, batch.request_counts.completed + batch.request_counts.failed


def test_batch_survives_a_killed_worker_and_bills_each_line_once(batch_stack):
    from openai import OpenAI

    server, env, tmp_dir = batch_stack
    email = "batcher@example.com"
    key = server.create_user_and_key(email)
    client = OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=60)
    lines = [
        {
            "custom_id": f"line-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": MODEL, "messages": [{"role": "user", "content": f"Say {i}"}], "max_tokens": 3},
        }
        for i in range(LINES)
    ]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    uploaded = client.files.create(file=("batch.jsonl", data), purpose="batch")
    assert uploaded.purpose == "batch" and uploaded.bytes == len(data)
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"e2e": "yes"}
    )
    assert batch.status == "validating" and batch.request_counts.total == LINES

    worker = start_worker(env, tmp_dir / "worker1.log")
    try:
        deadline = time.monotonic() + 240
        while _counts(client, batch.id)[1] < 10:
            assert time.monotonic() < deadline, (tmp_dir / "worker1.log").read_text()[-3000:]
            assert worker.poll() is None, (tmp_dir / "worker1.log").read_text()[-3000:]
            time.sleep(0.3)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # mid-batch, mid-line most likely: no goodbye
        worker.wait(timeout=10)
    status, done_at_kill = _counts(client, batch.id)
    assert status == "in_progress" and done_at_kill < LINES

    worker = start_worker(env, tmp_dir / "worker2.log")
    try:
        deadline = time.monotonic() + 300
        while (finished := client.batches.retrieve(batch.id)).status not in {"completed", "failed", "cancelled"}:
            assert time.monotonic() < deadline, (tmp_dir / "worker2.log").read_text()[-3000:]
            time.sleep(0.5)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)

    assert finished.status == "completed", finished
    assert finished.request_counts.completed == LINES and finished.request_counts.failed == 0
    assert finished.error_file_id is None and finished.output_file_id
    output = [json.loads(row) for row in client.files.content(finished.output_file_id).text.splitlines()]
    assert sorted(row["custom_id"] for row in output) == sorted(line["custom_id"] for line in lines)
    assert all(row["response"]["status_code"] == 200 for row in output)
    assert all(row["response"]["body"]["object"] == "chat.completion" for row in output)
    assert batch.id in [b.id for b in client.batches.list()]

    rows = server.usage_rows(email, expected=LINES + 1)
    billed = [row["request_id"] for row in rows if row["endpoint"] == "batch"]
    assert len(billed) == LINES and len(set(billed)) == LINES  # each line once, none twice
    assert all(row["completion_tokens"] > 0 for row in rows if row["endpoint"] == "batch")


def test_without_a_broker_the_server_runs_batches_itself(portal_server):
    """`make run` alone: no BROKER_URL, a thread of the server runs the job."""
    from openai import OpenAI

    assert "BROKER_URL" not in portal_server.env
    key = portal_server.create_user_and_key("threaded@example.com")
    client = OpenAI(base_url=f"{portal_server.url}/v1", api_key=key, max_retries=0, timeout=60)
    lines = [
        {"custom_id": f"t-{i}", "method": "POST", "url": "/v1/completions",
         "body": {"model": MODEL, "prompt": f"{i} + {i} =", "max_tokens": 2}}
        for i in range(5)
    ]  # fmt: skip
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    uploaded = client.files.create(file=("small.jsonl", data), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/completions", completion_window="24h")
    deadline = time.monotonic() + 120
    while (batch := client.batches.retrieve(batch.id)).status != "completed":
        assert time.monotonic() < deadline and batch.status in {"validating", "in_progress", "finalizing"}, batch
        time.sleep(0.3)
    assert batch.output_file_id is not None
    output = [json.loads(row) for row in client.files.content(batch.output_file_id).text.splitlines()]
    assert [row["custom_id"] for row in output] == [f"t-{i}" for i in range(5)]
    assert all(row["response"]["body"]["object"] == "text_completion" for row in output)
