"""Reads of the model registry, turned into the engine's plain ModelSpec objects.

The enabled rows are cached in-process for a few seconds so a request costs no query; saving a
row in this process clears the cache at once (see signals in apps.py), other processes follow
within REGISTRY_TTL_SECONDS.
"""

from __future__ import annotations

import threading
import time

from inference.engine.types import DeploymentSpec, ModelSpec
from inference.models import Deployment, RegisteredModel
from llmos_portal.db import db_sync_to_async

REGISTRY_TTL_SECONDS = 5.0

_lock = threading.Lock()
_cached: tuple[float, dict[str, ModelSpec]] | None = None
_generation = 0  # bumped by every forget: a read that overlapped a change is not cached


def deployment_spec(row: Deployment, model: RegisteredModel) -> DeploymentSpec:
    return DeploymentSpec(
        id=str(row.pk),
        name=row.name,
        kind=row.kind,  # type: ignore[arg-type]  # the model field's choices are the Literal's values
        upstream_url=row.upstream_url,
        upstream_api_key=row.upstream_api_key,
        upstream_model=row.upstream_model or model.upstream_model or model.name,
        weight=row.weight,
        timeout_s=row.timeout_s,
        max_parallel_requests=row.max_parallel_requests,
        enabled=row.enabled,
    )


def spec_for(row: RegisteredModel) -> ModelSpec:
    return ModelSpec(
        name=row.name,
        kind=row.kind,  # type: ignore[arg-type]  # the model field's choices are the Literal's values
        backend=row.backend,  # type: ignore[arg-type]
        source=row.source,
        upstream_url=row.upstream_url,
        upstream_api_key=row.upstream_api_key,
        upstream_model=row.upstream_model or row.name,
        context_length=row.context_length,
        options={"created": int(row.created_at.timestamp()), "owned_by": row.owned_by},
        deployments=tuple(deployment_spec(d, row) for d in row.deployments.all()),
        fallbacks=tuple(str(name) for name in row.fallbacks or ()),
        capabilities=frozenset(str(c) for c in row.capabilities or ()),
    )


def _fresh() -> dict[str, ModelSpec] | None:
    with _lock:
        if _cached is not None and time.monotonic() - _cached[0] < REGISTRY_TTL_SECONDS:
            return _cached[1]
    return None


def enabled_specs() -> dict[str, ModelSpec]:
    """name -> spec for every enabled model (cached; safe to call per request)."""
    global _cached
    cached = _fresh()
    if cached is not None:
        return cached
    with _lock:
        generation = _generation
    rows = RegisteredModel.objects.filter(enabled=True).prefetch_related("deployments")
    specs = {row.name: spec_for(row) for row in rows}
    with _lock:
        if generation == _generation:  # else a change landed while we read: don't cache what it replaced
            _cached = (time.monotonic(), specs)
    return specs


async def aenabled_specs() -> dict[str, ModelSpec]:
    """enabled_specs for async code: no thread hop while the cached copy is fresh."""
    cached = _fresh()
    return cached if cached is not None else await db_sync_to_async(enabled_specs)()


def forget_cached_specs(**_kwargs) -> None:
    global _cached, _generation
    with _lock:
        _cached = None
        _generation += 1
