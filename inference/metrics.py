"""Engine gauges for /metrics: model load state, queue depth and running batch size, read from the
process's model manager when the page is scraped."""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily

from inference.runtime import get_manager


class EngineCollector:
    """Model load state, queue depth and running batch size, read at scrape time."""

    def collect(self):
        state = GaugeMetricFamily("llmos_model_loaded", "1 if the model is loaded and ready", labels=["model", "state"])
        queue = GaugeMetricFamily("llmos_queue_depth", "Requests waiting for a batch slot", labels=["model"])
        running = GaugeMetricFamily("llmos_running_batch_size", "Sequences in the running batch", labels=["model"])
        for name, info in get_manager().state().items():
            state.add_metric([name, info.get("state", "unknown")], 1.0 if info.get("state") == "ready" else 0.0)
            queue.add_metric([name], float(info.get("queue_depth", 0)))
            running.add_metric([name], float(info.get("running", 0)))
        yield from (state, queue, running)
