"""Gateway overhead: what the portal adds per request in front of an upstream engine.

    .venv/bin/python bench/gateway.py [--seconds 10] [--concurrency 1 16] [--no-litellm] [--write]

Starts, in one invocation: an OpenAI-compatible upstream that answers instantly
(bench/fake_upstream.py); LiteLLM's proxy in front of it (installed on first use into
bench/.litellm-venv, gitignored; no database, so no key checks); the portal with 1 uvicorn worker,
with 2 (`--workers 2`) and as two 1-worker servers sharing the connections evenly (SQLite, no Redis
unless --redis), a model routed to the upstream and an API
key. Then drives each with the same non-streaming chat requests at each concurrency.

The load generator is a minimal keep-alive HTTP/1.1 client on raw asyncio streams, so that on a
small machine the client costs little next to the servers it measures. Beside latency and
requests/s, the table gives each server's CPU time per request (user + system, all its
processes): that figure is far less disturbed by other work on a shared machine than wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import portal

REPO = Path(__file__).resolve().parents[1]
LITELLM_VERSION = "1.108.7"
LITELLM_MASTER_KEY = "sk-litellm-bench-" + "0" * 32  # without a database, the one key it checks
LITELLM_VENV = REPO / "bench" / ".litellm-venv"
HEALTH = {"portal": "/healthz", "litellm": "/health/liveliness"}
BODY = json.dumps({"model": "fast", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}).encode()


class RawClient:
    """One keep-alive HTTP/1.1 connection: POST a fixed body, read the status and the body."""

    def __init__(self, host: str, port: int, path: str, key: str | None):
        auth = f"Authorization: Bearer {key}\r\n" if key else ""
        self.request = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}Content-Type: application/json\r\n"
            f"Content-Length: {len(BODY)}\r\n\r\n"
        ).encode() + BODY
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
        if "content-length" in headers:
            await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        if headers.get("connection") == "close":
            await self.close()
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


@dataclass
class Run:
    latencies: list[float]
    errors: int
    seconds: float
    cpu_s: float
    others_cpu_s: float = 0.0  # the load generator's and the upstream's CPU time meanwhile

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def p(self, q: float) -> float:
        values = sorted(self.latencies)
        return values[min(len(values) - 1, round(q * (len(values) - 1)))] * 1000 if values else float("nan")

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_s * 1000 / max(1, len(self.latencies))

    @property
    def others_ms_per_request(self) -> float:
        return self.others_cpu_s * 1000 / max(1, len(self.latencies))

    @property
    def cores_busy(self) -> float:
        return (self.cpu_s + self.others_cpu_s) / self.seconds


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a server process and its children (uvicorn's workers)."""
    process = psutil.Process(pid)
    total = 0.0
    for each in [process, *process.children(recursive=True)]:
        try:
            times = each.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


async def drive(
    urls: list[str], key: str | None, concurrency: int, seconds: float, pids: list[int], upstream_pid: int = 0
) -> Run:
    """`concurrency` keep-alive connections, spread evenly over `urls`, each sending requests back to
    back for `seconds`. CPU: the servers' (`pids`) and, apart, the load generator's and upstream's."""
    latencies: list[float] = []
    errors = 0
    upstream = [upstream_pid] if upstream_pid and upstream_pid not in pids else []

    def servers_cpu() -> float:
        return sum(cpu_seconds(pid) for pid in pids)

    def others_cpu() -> float:
        return time.process_time() + sum(cpu_seconds(pid) for pid in upstream)

    cpu_before, others_before = servers_cpu(), others_cpu()
    started = time.monotonic()
    deadline = started + seconds

    async def worker(index: int) -> None:
        nonlocal errors
        host, port = urls[index % len(urls)].removeprefix("http://").split(":")
        client = RawClient(host, int(port), "/v1/chat/completions", key)
        try:
            while time.monotonic() < deadline:
                begun = time.perf_counter()
                try:
                    status = await client.post()
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    errors += 1
                    await client.close()
                    continue
                if status == 200:
                    latencies.append(time.perf_counter() - begun)
                else:
                    errors += 1
        finally:
            await client.close()

    await asyncio.gather(*(worker(index) for index in range(concurrency)))
    elapsed = time.monotonic() - started
    return Run(latencies, errors, elapsed, servers_cpu() - cpu_before, others_cpu() - others_before)


def litellm_command(port: int, upstream_url: str, tmp: Path) -> list[str]:
    """LiteLLM's proxy (installed into its own venv on first use) routing `fast` to the upstream."""
    litellm = LITELLM_VENV / "bin" / "litellm"
    if not litellm.exists():
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        subprocess.run(
            [str(LITELLM_VENV / "bin" / "pip"), "install", "--quiet", f"litellm[proxy]=={LITELLM_VERSION}"], check=True
        )
    config = tmp / "litellm.yaml"
    config.write_text(
        "model_list:\n  - model_name: fast\n    litellm_params:\n      model: openai/fake\n"
        f"      api_base: {upstream_url}/v1\n      api_key: unused\n"
    )
    return [str(litellm), "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--redis", default="", help="REDIS_URL for the portal (default: none)")
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM (it installs on first use)")
    parser.add_argument("--write", action="store_true", help="append the table to bench/RESULTS.md")
    parser.add_argument("--profile", default="", help="record the 1-worker portal with py-spy (speedscope file)")
    args = parser.parse_args()

    env, tmp = portal.portal_env(
        DEBUG="false",
        SECRET_KEY="bench-" * 10,
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false",
        INFERENCE_PRELOAD="false",
        **({"REDIS_URL": args.redis} if args.redis else {}),
    )
    upstream_url = "http://127.0.0.1:9100"
    targets: dict[str, tuple[list[str], str | None]] = {"direct": ([upstream_url], None)}
    processes: dict[str, list[subprocess.Popen]] = {
        "direct": [portal.start([sys.executable, "-m", "bench.fake_upstream", "--port", "9100"], env, tmp / "up.log")]
    }
    try:
        key = portal.prepare(
            env,
            "from inference.models import RegisteredModel; RegisteredModel.objects.create(name='fast', "
            f"kind='chat', backend='upstream', upstream_url='{upstream_url}/v1', upstream_model='fake', "
            "context_length=4096)",
        )
        if not args.no_litellm:
            targets["litellm"] = (["http://127.0.0.1:9102"], LITELLM_MASTER_KEY)
            litellm_env = {name: value for name, value in env.items() if name not in ("DATABASE_URL", "REDIS_URL")}
            litellm_env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no fetch from the internet at start-up
            litellm_env["LITELLM_MASTER_KEY"] = LITELLM_MASTER_KEY
            processes["litellm"] = [
                portal.start(litellm_command(9102, upstream_url, tmp), litellm_env, tmp / "litellm.log")
            ]
        # "portal 2w" is `uvicorn --workers 2`: the kernel hands each keep-alive connection to one
        # worker, often unevenly. "portal 2x1w" is two one-worker servers with the connections split
        # evenly, as nginx in front of several workers spreads requests (deploy/nginx).
        for name, ports, workers in (
            ("portal 1w", [9101], 1),
            ("portal 2w", [9103], 2),
            ("portal 2x1w", [9104, 9105], 1),
        ):
            targets[name] = ([f"http://127.0.0.1:{port}" for port in ports], key)
            processes[name] = []
            for port in ports:
                server = [*portal.uvicorn("llmos_portal.asgi:application", port), "--workers", str(workers)]
                if args.profile and name == "portal 1w":  # py-spy (pip install py-spy) samples its stacks
                    server = ["py-spy", "record", "--format", "speedscope", "-o", args.profile, "--", *server]
                processes[name].append(portal.start(server, env, tmp / f"portal{port}.log"))
        portal.wait_for(upstream_url)
        for name, (urls, _) in targets.items():
            for url in urls:
                portal.wait_for(url + HEALTH.get(name.split()[0], ""))
        for urls, target_key in targets.values():
            asyncio.run(drive(urls, target_key, 4, 1.0, []))  # warm-up
        upstream_pid = processes["direct"][0].pid
        results: dict[tuple[str, int], Run] = {}
        for concurrency in args.concurrency:
            for name, (urls, target_key) in targets.items():
                pids = [process.pid for process in processes[name]]
                results[name, concurrency] = asyncio.run(
                    drive(urls, target_key, concurrency, args.seconds, pids, upstream_pid)
                )
        text = report(results, args, list(targets))
        print(text)
        if args.write:
            with (REPO / "bench" / "RESULTS.md").open("a") as out:
                out.write("\n" + text)
    finally:
        everything = [process for group in processes.values() for process in group]
        for process in everything:
            process.send_signal(signal.SIGINT)  # uvicorn shuts down; py-spy writes its profile
        for process in everything:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def report(results: dict[tuple[str, int], Run], args, names: list[str]) -> str:
    lines = [
        f"### Gateway overhead, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Instant upstream; direct, through LiteLLM's proxy and through the portal (SQLite, "
        f"{'Redis' if args.redis else 'no Redis'}), non-streaming chat, {args.seconds:.0f} s per run, one invocation. "
        "CPU ms/req: the server's own CPU time per answered request; load gen + upstream: the load "
        "generator's and the upstream's CPU time per request meanwhile; cores busy: all of them together.",
        "",
        "| concurrency | server | p50 / p95 ms | added p50 ms | req/s | CPU ms/req | load gen + upstream CPU ms/req "
        "| cores busy | errors |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for concurrency in args.concurrency:
        direct = results["direct", concurrency]
        for name in names:
            run = results[name, concurrency]
            added = "" if name == "direct" else f"{run.p(0.5) - direct.p(0.5):.1f}"
            lines.append(
                f"| {concurrency} | {name} | {run.p(0.5):.1f} / {run.p(0.95):.1f} | {added} | {run.rps:.0f} | "
                f"{run.cpu_ms_per_request:.2f} | {run.others_ms_per_request:.2f} | {run.cores_busy:.2f} | "
                f"{run.errors} |"
            )
    top = max(args.concurrency)
    one, two, split = results["portal 1w", top], results["portal 2w", top], results["portal 2x1w", top]
    lines += [
        "",
        f"At concurrency {top}: 2 workers / 1 worker = {two.rps / max(one.rps, 1e-9):.2f}x (uvicorn --workers 2), "
        f"{split.rps / max(one.rps, 1e-9):.2f}x (two servers, connections split evenly)",
    ]
    # What two workers could reach if every core not spent on the load generator and the upstream
    # went to the portal: the bound a machine with this many cores sets.
    cores = psutil.cpu_count() or 1
    per_request_ms = split.cpu_ms_per_request + split.others_ms_per_request
    lines[-1] += (
        f" ({cores} cores: at {per_request_ms:.2f} CPU ms per request for portal, load generator and upstream "
        f"together, the machine tops out near {cores * 1000 / per_request_ms:.0f} req/s = "
        f"{cores * 1000 / per_request_ms / max(one.rps, 1e-9):.2f}x one worker)"
    )
    if "litellm" in names:
        lite = results["litellm", top]
        lines[-1] += f"; portal 1 worker / LiteLLM = {one.rps / max(lite.rps, 1e-9):.2f}x req/s"
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
