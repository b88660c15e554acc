"""The portal against the anchor, llama.cpp's own llama-server, on the same GGUF in one invocation.

    .venv/bin/python bench/anchor.py                    # build llama-server once, run everything
    .venv/bin/python bench/anchor.py --concurrency 1 8 --write

1. Builds `llama-server` from the vendored llama.cpp of the llama-cpp-python sdist the portal links
   (same version, same default ggml options) into bench/.llama-server/ (gitignored). The sdist is
   downloaded there with pip unless --sdist names one; reruns find the binary and skip the build
   (~15 min on 2 cores).
2. Drives llama-server (`-np 16 -t <cores>`, the same KV cells per slot as the portal) with
   bench/load.py's streaming chat load: 128 new tokens, temperature 0.7, 2 x concurrency requests
   per level, each level after a warm-up request.
3. Starts a throwaway portal (bench/portal.py) that serves the embedded SmolLM2 on its llama.cpp
   runner and drives it with the same load. Levels interleave, each run twice in mirrored order
   (llama-server, portal, portal, llama-server at c1, then at c4, ...): only one server is under
   load at a time, and a steady drift in the machine's speed hits both alike.
4. Runs the naive baseline (fp32 `model.generate`, one request at a time) in this process.
5. Prints one Markdown table with TTFT, time per output token, aggregate tok/s, errors and the
   ratios portal / llama-server; --write appends it to bench/RESULTS.md.

Both servers get `--no-repack` semantics (no AMX/repacked weight buffers): on AMX CPUs under some
hypervisors ggml's AMX matmul segfaults (here: SIGILL), and Q4_1 has no other repacked kernel.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import load, portal

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "bench" / ".llama-server"
BUILD = WORK / "build"
SERVER_BIN = BUILD / "bin" / "llama-server"
CONTEXT_PER_SLOT = 2048  # the registry's context_length for the embedded model
SLOTS = 16  # llama-server -np, and the portal's INFERENCE_MAX_BATCH_SIZE


def pinned_version() -> str:
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if line.startswith("llama-cpp-python=="):
            return line.split("==", 1)[1].strip()
    raise SystemExit("llama-cpp-python is not pinned in requirements.txt")


def sdist_source(sdist: Path | None) -> Path:
    """The vendored llama.cpp of the pinned llama-cpp-python sdist, unpacked under WORK."""
    version = pinned_version()
    unpacked = WORK / f"llama_cpp_python-{version}"
    if not (unpacked / "vendor" / "llama.cpp" / "CMakeLists.txt").exists():
        WORK.mkdir(parents=True, exist_ok=True)
        if sdist is None:
            sdist = WORK / f"llama_cpp_python-{version}.tar.gz"
            if not sdist.exists():
                subprocess.run(
                    [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "llama-cpp-python"]
                    + [f"llama-cpp-python=={version}", "-d", str(WORK)],
                    check=True,
                )
        with tarfile.open(sdist) as archive:
            archive.extractall(WORK, filter="data")
    return unpacked / "vendor" / "llama.cpp"


def build_server(sdist: Path | None, jobs: int) -> Path:
    if SERVER_BIN.exists():
        return SERVER_BIN
    if shutil.which("cmake") is None:
        raise SystemExit("cmake is needed to build llama-server (apt-get install cmake)")
    source = sdist_source(sdist)
    print(f"building llama-server from {source} (once; ~15 min on 2 cores)", file=sys.stderr)
    subprocess.run(
        ["cmake", "-S", str(source), "-B", str(BUILD), "-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_CURL=OFF"]
        + ["-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=ON"]
        + ["-DBUILD_SHARED_LIBS=OFF"],
        check=True,
    )
    subprocess.run(["cmake", "--build", str(BUILD), "--target", "llama-server", "-j", str(jobs)], check=True)
    return SERVER_BIN


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_llama_server(
    binary: Path, gguf: Path, args: argparse.Namespace, log_dir: Path
) -> tuple[subprocess.Popen, str]:
    port = args.port + 1
    command = [str(binary), "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port)]
    command += ["-np", str(SLOTS), "-c", str(SLOTS * CONTEXT_PER_SLOT), "-t", str(args.threads)]
    command += ["-tb", str(args.threads), "--no-repack"]
    process = subprocess.Popen(command, stdout=(log_dir / "llama-server.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        portal.wait_for(f"http://127.0.0.1:{port}/health")
    except SystemExit:
        stop(process)
        raise
    print(f"llama-server: {' '.join(command[1:])}", file=sys.stderr)
    return process, f"http://127.0.0.1:{port}"


def start_portal(args: argparse.Namespace) -> tuple[subprocess.Popen, str, str, str]:
    env, tmp = portal.portal_env(
        INFERENCE_PRELOAD="true",
        INFERENCE_TORCH_THREADS=str(args.threads),
        INFERENCE_MAX_BATCH_SIZE=str(SLOTS),
    )
    key = portal.prepare(env)
    process = portal.start(portal.uvicorn("llmos_portal.asgi:application", args.port), env, tmp / "server.log")
    url = f"http://127.0.0.1:{args.port}"
    try:
        portal.wait_for(f"{url}/readyz")
    except SystemExit:
        stop(process)
        raise
    ready = httpx.get(f"{url}/readyz", timeout=5).text.strip()
    print(f"portal /readyz: {ready}", file=sys.stderr)
    # /readyz waits for the chat model only; the embedding model preloads behind it (importing
    # torch and transformers: seconds of CPU). One embedding waits for that to end before measuring.
    embedded = httpx.post(
        f"{url}/v1/embeddings",
        json={"model": "all-MiniLM-L6-v2", "input": "warm-up"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=600,
    )
    embedded.raise_for_status()
    return process, url, key, ready


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def interleaved(
    anchor: tuple[int, str, str], ours: tuple[int, str, str], args: argparse.Namespace
) -> tuple[list[load.LevelResult], list[load.LevelResult], dict[tuple[str, int], float]]:
    """Level by level in the order llama-server, portal, portal, llama-server (the idle one costs
    nothing), each server's two runs of a level merged: this machine's speed drifts by 20% within
    a minute or two, and the mirrored order cancels a steady drift. Also the CPU time each server
    spent per output token: wall-clock rates swing run to run, CPU per token much less."""
    servers = {"llama-server": anchor, "portal": ours}
    for _, url, api_key in servers.values():
        asyncio.run(load.run_level(url, api_key, 1, 1, 8))  # warm-up
    results: dict[str, list[load.LevelResult]] = {"llama-server": [], "portal": []}
    cpu_per_token: dict[tuple[str, int], float] = {}
    for concurrency in args.concurrency:
        merged = {name: load.LevelResult(concurrency) for name in servers}
        cpu = dict.fromkeys(servers, 0.0)
        for name in ("llama-server", "portal", "portal", "llama-server"):
            pid, url, api_key = servers[name]
            cpu_before = cpu_seconds(pid)
            level = asyncio.run(load.run_level(url, api_key, concurrency, args.requests_per_client, args.new_tokens))
            cpu[name] += cpu_seconds(pid) - cpu_before
            merged[name].samples += level.samples
            merged[name].wall_s += level.wall_s
        for name, level in merged.items():
            tokens = sum(sample.tokens for sample in level.ok())
            cpu_per_token[(name, concurrency)] = cpu[name] / max(tokens, 1)
            errors = Counter(sample.error for sample in level.samples if sample.error)
            print(
                f"  {name} c{concurrency}: {level.tokens_per_s:.1f} tok/s, "
                f"{cpu_per_token[(name, concurrency)] * 1000:.1f} CPU ms/token"
                + (f", errors: {dict(errors)}" if errors else ""),
                file=sys.stderr,
            )
            results[name].append(level)
    return results["llama-server"], results["portal"], cpu_per_token


def row(name: str, level: load.LevelResult) -> tuple[str, list[str]]:
    ok = level.ok()
    ttfts, tpots = [s.ttft_s for s in ok], [s.tpot_s for s in ok]
    return name, [
        str(level.concurrency),
        str(len(level.samples) - len(ok)),
        f"{load.fmt_ms(load.pct(ttfts, 0.5))} / {load.fmt_ms(load.pct(ttfts, 0.95))}",
        load.fmt_ms(load.pct(tpots, 0.5)),
        f"{level.tokens_per_s:.1f}",
    ]


def ratio(a: float | None, b: float | None) -> str:
    return "–" if not a or not b else f"{a / b:.2f}x"


def report(
    anchor: list[load.LevelResult],
    ours: list[load.LevelResult],
    base: load.LevelResult,
    cpu: dict[tuple[str, int], float],
    args: argparse.Namespace,
) -> str:
    cpu_name = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    lines = [
        f"### Portal (llama.cpp runner) vs llama-server, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Machine: {cpu_name}, {os.cpu_count()} cores. Same GGUF (SmolLM2-135M-Instruct Q4_1), llama.cpp "
        f"from llama-cpp-python {pinned_version()}, {args.threads} threads, {SLOTS} slots x "
        f"{CONTEXT_PER_SLOT} KV cells, no weight repacking. Streaming chat, {args.new_tokens} new tokens max, "
        f"temperature 0.7, {args.requests_per_client} requests per client, each level run twice per server "
        f"(A B B A), one invocation "
        f"(`bench/anchor.py`). Portal: 1 uvicorn worker.",
        "",
        "| server | concurrency | errors | TTFT p50 / p95 ms | TPOT p50 ms | output tok/s | server CPU ms / token "
        "| tok/s portal / llama-server | TTFT p50 portal / llama-server | CPU / token portal / llama-server |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    base_ttft = load.pct([s.ttft_s for s in base.samples], 0.5)
    lines.append(
        f"| naive fp32 `model.generate`, one at a time | 1 | 0 | {load.fmt_ms(base_ttft)} / "
        f"{load.fmt_ms(load.pct([s.ttft_s for s in base.samples], 0.95))} | "
        f"{load.fmt_ms(load.pct([s.tpot_s for s in base.samples], 0.5))} | {base.tokens_per_s:.1f} | | | | |"
    )
    for theirs, mine in zip(anchor, ours, strict=True):
        c = theirs.concurrency
        their_cpu, my_cpu = cpu[("llama-server", c)], cpu[("portal", c)]
        name, cells = row("llama-server", theirs)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {their_cpu * 1000:.1f} | | | |")
        name, cells = row("**portal, llama.cpp runner**", mine)
        their_ttft = load.pct([s.ttft_s for s in theirs.ok()], 0.5)
        my_ttft = load.pct([s.ttft_s for s in mine.ok()], 0.5)
        lines.append(
            f"| {name} | " + " | ".join(cells) + f" | {my_cpu * 1000:.1f} | "
            f"{ratio(mine.tokens_per_s, theirs.tokens_per_s)} | {ratio(my_ttft, their_ttft)} | "
            f"{ratio(my_cpu, their_cpu)} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--requests-per-client", type=int, default=2)
    parser.add_argument("--baseline-requests", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--port", type=int, default=8765, help="the portal's port; llama-server gets port + 1")
    parser.add_argument("--sdist", type=Path, help="a llama-cpp-python sdist (.tar.gz) instead of pip download")
    parser.add_argument("--build-jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--write", action="store_true", help="append the report to bench/RESULTS.md")
    args = parser.parse_args()

    from inference.engine.manager import smollm2_gguf_path

    binary = build_server(args.sdist, args.build_jobs)
    log_dir = WORK / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    servers: list[subprocess.Popen] = []
    try:
        server, anchor_url = start_llama_server(binary, smollm2_gguf_path(), args, log_dir)
        servers.append(server)
        server, portal_url, key, ready = start_portal(args)
        servers.append(server)
        anchor, ours, cpu = interleaved((servers[0].pid, anchor_url, "unused"), (servers[1].pid, portal_url, key), args)
    finally:
        for server in servers:
            stop(server)
    if args.skip_baseline:
        base = load.LevelResult(concurrency=1)
    else:
        print("baseline:", file=sys.stderr)
        base = load.baseline(args.baseline_requests, args.new_tokens, args.threads)
    text = report(anchor, ours, base, cpu, args) + f"\nPortal /readyz during the run: `{ready}`\n"
    print(text)
    if args.write:
        with (REPO / "bench" / "RESULTS.md").open("a") as results:
            results.write("\n" + text)


if __name__ == "__main__":
    main()
