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
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import portal

REPO = Path(__file__).resolve().parents[1]
BODY = {"model": "fast", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}


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

    env, tmp = portal.portal_env(
        DEBUG="false",
        SECRET_KEY="bench-" * 10,
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false",
        INFERENCE_PRELOAD="false",
        **({"REDIS_URL": args.redis} if args.redis else {}),
    )
    upstream_port, portal_port = 9100, 9101
    upstream_url, portal_url = f"http://127.0.0.1:{upstream_port}", f"http://127.0.0.1:{portal_port}"
    processes = [portal.start(portal.uvicorn("bench.fake_upstream:app", upstream_port), env, tmp / "up.log")]
    try:
        key = portal.prepare(
            env,
            "from inference.models import RegisteredModel; RegisteredModel.objects.create(name='fast', "
            f"kind='chat', backend='upstream', upstream_url='{upstream_url}/v1', upstream_model='fake', "
            "context_length=4096)",
        )
        processes.append(
            portal.start(portal.uvicorn("llmos_portal.asgi:application", portal_port), env, tmp / "portal.log")
        )
        portal.wait_for(upstream_url)
        portal.wait_for(f"{portal_url}/healthz")
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
            via, via_errors = asyncio.run(drive(portal_url, key, concurrency, args.seconds))
            lines.append(
                f"| {concurrency} | {pct(direct, 0.5) * 1000:.1f} / {pct(direct, 0.95) * 1000:.1f} | "
                f"{pct(via, 0.5) * 1000:.1f} / {pct(via, 0.95) * 1000:.1f} | "
                f"{(pct(via, 0.5) - pct(direct, 0.5)) * 1000:.1f} | {len(direct) / args.seconds:.0f} | "
                f"{len(via) / args.seconds:.0f} | {direct_errors + via_errors} |"
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
