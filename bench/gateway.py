"""Gateway overhead: what the portal adds per request before any model runs.

    .venv/bin/python bench/gateway.py [--seconds 10] [--concurrency 1 16] [--write]

Starts an OpenAI-compatible upstream that answers instantly (bench/fake_upstream.py) and a portal
(1 uvicorn worker, SQLite, no Redis unless --redis) with a model routed to it, then drives both
with the same non-streaming chat requests: directly, and through the portal with an API key.
Reports p50/p95 latency and requests/s for each and the difference, which is the portal's cost
(key lookup, limits, validation, metering, proxying).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
BODY = {"model": "fast", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}


def wait_for(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not come up")


def start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def setup_portal(env: dict, upstream_url: str) -> str:
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)
    script = (
        "from accounts import services; from accounts.models import Plan; "
        "from inference.models import RegisteredModel; "
        "plan = Plan.objects.create(name='bench', requests_per_minute=10**7, tokens_per_minute=10**9, "
        "tokens_per_day=10**10, max_tokens_per_request=4096); "
        "user = services.user_signup(email='gw@example.com', password='bench-pass-123456', verified=True); "
        "user.plan = plan; user.save(); "
        "RegisteredModel.objects.create(name='fast', kind='chat', backend='upstream', "
        f"upstream_url='{upstream_url}/v1', upstream_model='fake', context_length=4096)"
    )
    subprocess.run([python, "manage.py", "shell", "-c", script], cwd=REPO, env=env, check=True)
    return subprocess.run(
        [python, "manage.py", "create_api_key", "gw@example.com"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


async def drive(url: str, key: str | None, concurrency: int, seconds: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency + 2)) as client:

        async def worker() -> None:
            nonlocal errors
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = await client.post(f"{url}/v1/chat/completions", json=BODY, headers=headers)
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))] if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--redis", default="", help="REDIS_URL for the portal (default: none)")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="llmos-gw-"))
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "bench-" * 10,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": f"sqlite:///{tmp / 'gw.sqlite3'}",
        "INFERENCE_PRELOAD": "false",
        "LOG_LEVEL": "WARNING",
        "RESPONSE_CACHE_SECONDS": "0",
    }
    env.pop("REDIS_URL", None)
    if args.redis:
        env["REDIS_URL"] = args.redis
    upstream_port, portal_port = 9100, 9101
    upstream_url, portal_url = f"http://127.0.0.1:{upstream_port}", f"http://127.0.0.1:{portal_port}"
    uvicorn = [sys.executable, "-m", "uvicorn", "--no-access-log", "--host", "127.0.0.1"]
    processes = [start([*uvicorn, "--port", str(upstream_port), "bench.fake_upstream:app"], env, tmp / "up.log")]
    try:
        key = setup_portal(env, upstream_url)
        processes.append(
            start([*uvicorn, "--port", str(portal_port), "llmos_portal.asgi:application"], env, tmp / "portal.log")
        )
        wait_for(upstream_url)
        wait_for(f"{portal_url}/healthz")
        asyncio.run(drive(portal_url, key, 2, 1.0))  # warm-up
        lines = [
            f"### Gateway overhead, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
            "",
            f"Instant upstream vs the same through the portal (1 worker, SQLite, "
            f"{'Redis' if args.redis else 'no Redis'}), non-streaming chat, {args.seconds:.0f} s per run.",
            "",
            "| concurrency | direct p50 / p95 ms | via portal p50 / p95 ms | added p50 ms | direct req/s "
            "| via portal req/s | errors |",
            "| ---: | --- | --- | ---: | ---: | ---: | ---: |",
        ]
        for concurrency in args.concurrency:
            direct, direct_errors = asyncio.run(drive(upstream_url, None, concurrency, args.seconds))
            portal, portal_errors = asyncio.run(drive(portal_url, key, concurrency, args.seconds))
            lines.append(
                f"| {concurrency} | {pct(direct, 0.5) * 1000:.1f} / {pct(direct, 0.95) * 1000:.1f} | "
                f"{pct(portal, 0.5) * 1000:.1f} / {pct(portal, 0.95) * 1000:.1f} | "
                f"{(pct(portal, 0.5) - pct(direct, 0.5)) * 1000:.1f} | {len(direct) / args.seconds:.0f} | "
                f"{len(portal) / args.seconds:.0f} | {direct_errors + portal_errors} |"
            )
        text = "\n".join(lines) + "\n"
        print(text)
        if args.write:
            with (REPO / "bench" / "RESULTS.md").open("a") as results:
                results.write("\n" + text)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=15)


if __name__ == "__main__":
    main()
