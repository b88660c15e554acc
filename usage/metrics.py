"""Request metrics in Prometheus format: counters and histograms updated as each metered request
finishes. Collectors of other apps (the model manager's state) are added to the page at scrape time.

With several worker processes set PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess
mode) so /metrics aggregates all of them.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10)

REQUESTS = Counter("llmos_requests_total", "Inference requests", ["endpoint", "model", "status"])
TOKENS = Counter("llmos_tokens_total", "Tokens processed", ["model", "direction"])
LATENCY = Histogram(
    "llmos_request_latency_seconds", "End-to-end request latency", ["endpoint", "model"], buckets=LATENCY_BUCKETS
)
TTFT = Histogram("llmos_time_to_first_token_seconds", "Time to first token", ["model"], buckets=TTFT_BUCKETS)
USAGE_ROWS_DROPPED = Counter(
    "llmos_usage_rows_dropped_total", "Usage rows lost: the buffer overflowed while the database was unreachable"
)
USAGE_ROWS_PARKED = Counter(
    "llmos_usage_rows_parked_total", "Usage rows that could not be written after retries, set aside and logged"
)
USAGE_ROWS_REWRITTEN = Counter(
    "llmos_usage_rows_without_key_total", "Usage rows written without their API key (the key was deleted)"
)


def observe_request(
    *,
    endpoint: str,
    model: str,
    status: int,
    prompt_tokens: int,
    completion_tokens: int,
    latency_s: float,
    ttft_s: float | None,
) -> None:
    model = model or "-"
    REQUESTS.labels(endpoint, model, str(status)).inc()
    if prompt_tokens:
        TOKENS.labels(model, "in").inc(prompt_tokens)
    if completion_tokens:
        TOKENS.labels(model, "out").inc(completion_tokens)
    LATENCY.labels(endpoint, model).observe(latency_s)
    if ttft_s is not None:
        TTFT.labels(model).observe(ttft_s)


def exposition(*collectors: Collector) -> bytes:
    """The metrics page in Prometheus text format, with `collectors` read at scrape time."""
    from prometheus_client import REGISTRY

    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    output = generate_latest(registry)
    extra = CollectorRegistry()
    for collector in collectors:
        extra.register(collector)
    return output + generate_latest(extra)
