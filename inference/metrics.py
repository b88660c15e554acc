"""Engine metrics for /metrics: model load state, queue depth and running batch size, and each
deployment's health and requests in flight, read from the process's model manager when the page
is scraped; per-deployment requests, errors and latency counted as requests finish.

Deployment labels are the model's public name and the deployment's name: never its URL or key."""

from __future__ import annotations

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from inference.runtime import get_manager
from usage.metrics import LATENCY_BUCKETS

DEPLOYMENT_REQUESTS = Counter(
    "llmos_deployment_requests_total", "Requests sent to a deployment of a model group", ["model", "deployment"]
)
DEPLOYMENT_ERRORS = Counter(
    "llmos_deployment_errors_total",
    "Requests a deployment failed (connect error, timeout, 5xx, ...)",
    ["model", "deployment"],
)
DEPLOYMENT_LATENCY = Histogram(
    "llmos_deployment_latency_seconds",
    "Time a deployment spent on a request (a stream: until its end)",
    ["model", "deployment"],
    buckets=LATENCY_BUCKETS,
)


def observe_deployment(model: str, deployment: str, outcome: str, seconds: float) -> None:
    """The engine's router calls this as each try on a deployment ends."""
    DEPLOYMENT_REQUESTS.labels(model, deployment).inc()
    if outcome != "ok":
        DEPLOYMENT_ERRORS.labels(model, deployment).inc()
    DEPLOYMENT_LATENCY.labels(model, deployment).observe(seconds)


class EngineCollector:
    """Model load state, queue depth, running batch size and deployment health, read at scrape time."""

    def collect(self):
        state = GaugeMetricFamily("llmos_model_loaded", "1 if the model is loaded and ready", labels=["model", "state"])
        queue = GaugeMetricFamily("llmos_queue_depth", "Requests waiting for a batch slot", labels=["model"])
        running = GaugeMetricFamily("llmos_running_batch_size", "Sequences in the running batch", labels=["model"])
        healthy = GaugeMetricFamily(
            "llmos_deployment_healthy",
            "1 unless the deployment is cooling down after failures",
            labels=["model", "deployment"],
        )
        in_flight = GaugeMetricFamily(
            "llmos_deployment_in_flight",
            "Requests running on the deployment (this process)",
            labels=["model", "deployment"],
        )
        for name, info in get_manager().state().items():
            state.add_metric([name, info.get("state", "unknown")], 1.0 if info.get("state") == "ready" else 0.0)
            queue.add_metric([name], float(info.get("queue_depth", 0)))
            running.add_metric([name], float(info.get("running", 0)))
            for deployment in info.get("deployments") or []:
                healthy.add_metric([name, deployment["name"]], 1.0 if deployment["healthy"] else 0.0)
                in_flight.add_metric([name, deployment["name"]], float(deployment["in_flight"]))
        yield from (state, queue, running, healthy, in_flight)
