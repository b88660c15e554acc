"""A throwaway portal for benchmarks: its own SQLite file, a user on an unlimited plan, an API key,
and a uvicorn server started and awaited."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
EMAIL = "bench@example.com"


def portal_env(**overrides: str) -> tuple[dict[str, str], Path]:
    """Environment for a benchmark portal (no Redis unless given, response cache off) and its folder."""
    tmp = Path(tempfile.mkdtemp(prefix="llmos-bench-"))
    env = {
        **os.environ,
        "DEBUG": "true",
        "DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite3'}",
        "LOG_LEVEL": "WARNING",
        "RESPONSE_CACHE_SECONDS": "0",
    }
    env.pop("REDIS_URL", None)
    env.update(overrides)
    return env, tmp


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


def prepare(env: dict[str, str], extra_python: str = "") -> str:
    """Migrate, create the bench user on an unlimited plan (plus `extra_python`); return an API key."""
    manage(env, "migrate", "-v0")
    script = (
        "from accounts import services; from accounts.models import Plan; "
        "plan = Plan.objects.create(name='bench', requests_per_minute=10**7, tokens_per_minute=10**9, "
        "tokens_per_day=10**10, max_tokens_per_request=4096, max_concurrent_requests=10**4); "
        f"user = services.user_signup(email='{EMAIL}', password='bench-pass-123456', verified=True); "
        "user.plan = plan; user.save(); " + extra_python
    )
    manage(env, "shell", "-c", script)
    return manage(env, "create_api_key", EMAIL).splitlines()[-1]


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def uvicorn(app: str, port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]


def wait_for(url: str, timeout: float = 300) -> None:
    """Until `url` answers 200 (a server's /readyz or /healthz)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} did not come up")
