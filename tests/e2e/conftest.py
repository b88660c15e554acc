"""A real portal server (uvicorn, ASGI) in a subprocess, shared by the e2e and browser tests.

It gets a database of its own: a temporary SQLite file, or a fresh PostgreSQL database on the
same server when DATABASE_URL points at PostgreSQL; and Redis database 1 when REDIS_URL is set.
The embedded models are preloaded once for the whole session.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh_postgres_url(url: str, name: str) -> str:
    import psycopg

    parts = urlsplit(url)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


@dataclass
class PortalServer:
    url: str
    env: dict[str, str]
    log_dir: Path = ROOT

    def manage(self, *args: str) -> str:
        """Run a management command against the server's database; return its stdout."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, check=True
        )
        return result.stdout.strip()

    def create_user_and_key(self, email: str, password: str = "e2e-long-passphrase-1", *, plan: str = "e2e") -> str:
        """A user on a roomy plan (the tests make many calls a minute), and a key for them."""
        self.manage(
            "shell",
            "-c",
            "from accounts import services; from accounts.models import Plan; "
            f"user = services.user_signup(email='{email}', password='{password}', verified=True); "
            f"user.plan, _ = Plan.objects.get_or_create(name='{plan}', defaults=dict(requests_per_minute=10000, "
            "tokens_per_minute=10000000, tokens_per_day=100000000, max_tokens_per_request=4096, "
            "max_concurrent_requests=64)); "
            "user.save()",
        )
        return self.manage("create_api_key", email, "--name", "e2e")

    def usage_rows(self, email: str, *, expected: int, timeout: float = 10.0) -> list[dict]:
        """The user's usage rows as the server wrote them (it flushes about once a second)."""
        script = (
            "import json; from usage.models import UsageRecord; "
            f"print(json.dumps(list(UsageRecord.objects.filter(user__email='{email}').order_by('id').values())"
            ", default=str))"
        )
        deadline = time.monotonic() + timeout
        while True:
            rows = json.loads(self.manage("shell", "-c", script).splitlines()[-1])
            if len(rows) >= expected or time.monotonic() > deadline:
                return rows
            time.sleep(0.5)


def base_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(
        {
            "DEBUG": "true",
            "DJANGO_SETTINGS_MODULE": "llmos_portal.settings",
            "LOG_LEVEL": "WARNING",
            "MODELS_CACHE_DIR": str(ROOT / ".cache" / "models"),
        }
    )
    return env


def _server_env(tmp_dir: Path) -> dict[str, str]:
    env = base_env()
    env["INFERENCE_PRELOAD"] = "true"
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url.startswith("postgres"):
        env["DATABASE_URL"] = fresh_postgres_url(database_url, "llmos_e2e")
    else:
        env["DATABASE_URL"] = f"sqlite:///{tmp_dir / 'e2e.sqlite3'}"
    if os.environ.get("REDIS_URL"):
        import redis

        redis_url = urlunsplit(urlsplit(os.environ["REDIS_URL"])._replace(path="/1"))
        redis.Redis.from_url(redis_url).flushdb()  # no cached answers or counters from an earlier run
        env["REDIS_URL"] = redis_url
    return env


def wait_until_ready(url: str, process: subprocess.Popen, timeout: float = 240, path: str = "/readyz") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}{path}", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"server at {url} not ready after {timeout}s")


def start_server(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen:
    log = log_path.open("ab")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "llmos_portal.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture(scope="session")
def portal_server(tmp_path_factory) -> Iterator[PortalServer]:
    tmp_dir = tmp_path_factory.mktemp("portal")
    env = _server_env(tmp_dir)
    port = free_port()
    server = PortalServer(url=f"http://127.0.0.1:{port}", env=env, log_dir=tmp_dir)
    server.manage("migrate", "--noinput")
    log_path = tmp_dir / "server.log"
    process = start_server(env, port, log_path)
    try:
        wait_until_ready(server.url, process)
    except Exception:
        process.kill()
        print(log_path.read_text()[-5000:])
        raise
    yield server
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def chromium():
    """Per module, not per session: Playwright's sync API keeps an event loop running in this
    thread while it is open, which would break every async test that runs after it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context()
    page = context.new_page()
    yield page
    context.close()
