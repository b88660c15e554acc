"""HTTP load generator for the portal's streaming chat API, with an in-process baseline.

    .venv/bin/python bench/load.py --start-server            # start a server, run everything
    .venv/bin/python bench/load.py --url http://127.0.0.1:8000 --key llmos_...   # a running server

For each concurrency level, N clients each stream `--requests-per-client` chat completions
(`max_tokens` = --new-tokens, temperature 0.7 so nothing is answered from the response cache) and
we report TTFT, time per output token (TPOT), end-to-end latency (p50/p95), aggregate output
tokens/s and errors. In the same invocation, the baseline runs the same prompts one at a time
through plain `model.generate` in fp32 (in this process, while the server idles), so every figure
can be read as a ratio against a baseline measured on the same noisy machine at the same time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import portal

REPO = Path(__file__).resolve().parents[1]
MODEL = "SmolLM2-135M-Instruct"
TOPICS = [
    "the sea",
    "a lighthouse keeper",
    "a robot learning to paint",
    "a city under snow",
    "an old map",
    "a lost cat",
    "the first day of school",
    "a journey by train",
]


def prompt_for(index: int) -> list[dict]:
    topic = TOPICS[index % len(TOPICS)]
    return [{"role": "user", "content": f"Write a long, detailed story about {topic}."}]


@dataclass
class Sample:
    ttft_s: float | None = None
    e2e_s: float = 0.0
    tokens: int = 0
    error: str | None = None

    @property
    def tpot_s(self) -> float | None:
        if self.ttft_s is None or self.tokens < 2:
            return None
        return (self.e2e_s - self.ttft_s) / (self.tokens - 1)


@dataclass
class LevelResult:
    concurrency: int
    samples: list[Sample] = field(default_factory=list)
    wall_s: float = 0.0

    def ok(self) -> list[Sample]:
        return [sample for sample in self.samples if sample.error is None]

    @property
    def tokens_per_s(self) -> float:
        return sum(sample.tokens for sample in self.ok()) / self.wall_s if self.wall_s else 0.0


def pct(values: list[float], q: float) -> float | None:
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


async def one_stream(client: httpx.AsyncClient, url: str, key: str, index: int, new_tokens: int) -> Sample:
    body = {
        "model": MODEL,
        "messages": prompt_for(index),
        "max_tokens": new_tokens,
        "temperature": 0.7,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    sample = Sample()
    started = time.perf_counter()
    for attempt in (1, 2):
        responded = False
        try:
            async with client.stream(
                "POST", f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
            ) as response:
                responded = True
                if response.status_code != 200:
                    sample.error = f"HTTP {response.status_code}"
                    await response.aread()
                    return sample
                async for line in response.aiter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    chunk = json.loads(line[6:])
                    if "error" in chunk:
                        sample.error = chunk["error"].get("code") or "stream error"
                    elif chunk.get("usage"):
                        sample.tokens = chunk["usage"]["completion_tokens"]
                    elif chunk["choices"] and chunk["choices"][0]["delta"].get("content") and sample.ttft_s is None:
                        sample.ttft_s = time.perf_counter() - started
            break
        except httpx.HTTPError as exc:
            # A kept-alive connection that the server closed just as the request went out (seen
            # with llama-server): nothing was generated, so it is sent once more, as a client
            # library with retries would; the time lost counts in its TTFT.
            if isinstance(exc, httpx.TransportError) and not responded and attempt == 1:
                continue
            sample.error = type(exc).__name__
            break
    sample.e2e_s = time.perf_counter() - started
    return sample


async def run_level(url: str, key: str, concurrency: int, per_client: int, new_tokens: int) -> LevelResult:
    result = LevelResult(concurrency)
    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:

        async def client_loop(client_index: int) -> None:
            for request_index in range(per_client):
                result.samples.append(
                    await one_stream(client, url, key, client_index * per_client + request_index, new_tokens)
                )

        started = time.perf_counter()
        await asyncio.gather(*(client_loop(index) for index in range(concurrency)))
        result.wall_s = time.perf_counter() - started
    return result


def baseline(requests: int, new_tokens: int, threads: int | None) -> LevelResult:
    """Plain `model.generate`, fp32, one request at a time: the reference every ratio uses."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sys.path.insert(0, str(REPO))
    from inference.engine.manager import convert_smollm2

    if threads:
        torch.set_num_threads(threads)
    model_dir = convert_smollm2(REPO / ".cache" / "models")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    result = LevelResult(concurrency=1)
    for index in range(requests):
        ids = tokenizer.apply_chat_template(prompt_for(index), add_generation_prompt=True, return_tensors="pt")
        ids = ids["input_ids"] if hasattr(ids, "keys") else ids
        started = time.perf_counter()
        with torch.inference_mode():
            model.generate(ids, max_new_tokens=1, do_sample=False)  # a probe: prefill + first token
            ttft = time.perf_counter() - started
            output = model.generate(ids, max_new_tokens=new_tokens, do_sample=True, temperature=0.7)
        total = time.perf_counter() - started
        tokens = output.shape[1] - ids.shape[1]
        # e2e counts only the full generation (the TTFT probe is excluded from it).
        result.samples.append(Sample(ttft_s=ttft, e2e_s=total - ttft, tokens=tokens))
    result.wall_s = sum(sample.e2e_s for sample in result.samples)
    return result


def fmt_ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1000:.0f}"


def report(levels: list[LevelResult], base: LevelResult, args) -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    base_tps = base.tokens_per_s
    lines = [
        f"### HTTP load, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Machine: {cpu}, {os.cpu_count()} cores. Server: 1 uvicorn worker, {args.server_desc}. "
        f"Model {MODEL}, {args.new_tokens} new tokens max, temperature 0.7, streaming.",
        "",
        "| run | concurrency | requests | errors | TTFT p50 / p95 ms | TPOT p50 ms | e2e p50 / p95 ms "
        "| output tok/s | vs baseline |",
        "| --- | ---: | ---: | ---: | --- | ---: | --- | ---: | ---: |",
    ]
    base_ttfts = [s.ttft_s for s in base.samples]
    lines.append(
        f"| baseline: fp32 `model.generate`, one at a time | 1 | {len(base.samples)} | 0 | "
        f"{fmt_ms(pct(base_ttfts, 0.5))} / {fmt_ms(pct(base_ttfts, 0.95))} | "
        f"{fmt_ms(pct([s.tpot_s for s in base.samples], 0.5))} | "
        f"{fmt_ms(pct([s.e2e_s for s in base.samples], 0.5))} / {fmt_ms(pct([s.e2e_s for s in base.samples], 0.95))} | "
        f"{base_tps:.1f} | 1.00x |"
    )
    for level in levels:
        ok = level.ok()
        ttfts, tpots, e2es = [s.ttft_s for s in ok], [s.tpot_s for s in ok], [s.e2e_s for s in ok]
        ratio = level.tokens_per_s / base_tps if base_tps else 0
        lines.append(
            f"| server | {level.concurrency} | {len(level.samples)} | {len(level.samples) - len(ok)} | "
            f"{fmt_ms(pct(ttfts, 0.5))} / {fmt_ms(pct(ttfts, 0.95))} | {fmt_ms(pct(tpots, 0.5))} | "
            f"{fmt_ms(pct(e2es, 0.5))} / {fmt_ms(pct(e2es, 0.95))} | {level.tokens_per_s:.1f} | {ratio:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def start_server(port: int, threads: int | None) -> tuple[subprocess.Popen, str, str]:
    """A throwaway server with the models preloaded, and an API key on an unlimited plan."""
    overrides = {"INFERENCE_PRELOAD": "true"}
    if threads:
        overrides["INFERENCE_TORCH_THREADS"] = str(threads)
    env, tmp = portal.portal_env(**overrides)
    key = portal.prepare(env)
    process = portal.start(portal.uvicorn("llmos_portal.asgi:application", port), env, tmp / "server.log")
    url = f"http://127.0.0.1:{port}"
    try:
        portal.wait_for(f"{url}/readyz")
    except SystemExit:
        process.kill()
        raise
    return process, url, key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url")
    parser.add_argument("--key")
    parser.add_argument("--start-server", action="store_true")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--requests-per-client", type=int, default=2)
    parser.add_argument("--baseline-requests", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="torch threads, server and baseline")
    parser.add_argument("--write", action="store_true", help="append the report to bench/RESULTS.md")
    args = parser.parse_args()

    process = None
    if args.start_server:
        process, args.url, args.key = start_server(args.port, args.threads)
    if not (args.url and args.key):
        parser.error("give --url and --key, or --start-server")
    args.server_desc = f"torch threads {args.threads or 'default'}"
    try:
        asyncio.run(run_level(args.url, args.key, 1, 1, 8))  # warm-up
        levels = []
        for concurrency in args.concurrency:
            levels.append(
                asyncio.run(run_level(args.url, args.key, concurrency, args.requests_per_client, args.new_tokens))
            )
            print(f"concurrency {concurrency}: {levels[-1].tokens_per_s:.1f} tok/s", file=sys.stderr)
        base = baseline(args.baseline_requests, args.new_tokens, args.threads)
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
    text = report(levels, base, args)
    print(text)
    if args.write:
        with (REPO / "bench" / "RESULTS.md").open("a") as results:
            results.write("\n" + text)


if __name__ == "__main__":
    main()
