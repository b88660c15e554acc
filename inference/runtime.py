"""The process-wide model manager, configured from settings and the registry."""

from __future__ import annotations

import asyncio
import logging
import threading

from django.conf import settings

from inference.engine.manager import ModelManager
from inference.engine.router import HealthStore, MemoryHealthStore, RedisHealthStore
from inference.engine.types import ModelSpec

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_manager: ModelManager | None = None


def health_store() -> HealthStore:
    """Where deployments' cooldowns live: Redis (shared by every worker) when REDIS_URL is set."""
    if settings.REDIS_URL:
        return RedisHealthStore(settings.REDIS_URL, prefix=settings.CACHE_KEY_PREFIX)
    return MemoryHealthStore()


def new_manager(specs=()) -> ModelManager:
    """A model manager configured from settings."""
    return ModelManager(
        specs,
        cache_dir=settings.MODELS_CACHE_DIR,
        max_queue=settings.INFERENCE_MAX_QUEUE,
        max_batch_size=settings.INFERENCE_MAX_BATCH_SIZE,
        torch_threads=settings.INFERENCE_TORCH_THREADS,
        device=settings.INFERENCE_DEVICE,
        health=health_store(),
        cooldown_s=float(settings.DEPLOYMENT_COOLDOWN_SECONDS),
    )


def get_manager() -> ModelManager:
    """The process-wide manager every request uses."""
    global _manager
    with _lock:
        if _manager is None:
            _manager = new_manager()
        return _manager


_configured: dict[str, ModelSpec] | None = None


def sync_specs(specs: dict[str, ModelSpec]) -> ModelManager:
    """Hand the registry's current specs to the manager (unchanged models stay loaded).

    The registry returns the same dict until it re-reads the table, so most calls do nothing."""
    global _configured
    manager = get_manager()
    if specs is not _configured:
        manager.configure(specs.values())
        _configured = specs
    return manager


async def current_manager() -> ModelManager:
    """The manager, with the registry's latest specs (a cached read; no query most of the time)."""
    from inference.registry import aenabled_specs

    return sync_specs(await aenabled_specs())


async def default_model_status() -> dict:
    """The default chat model's state, the runner serving it and why it fell back (if it did);
    starts loading it if nobody has yet."""
    manager = await current_manager()
    info = manager.state().get(settings.DEFAULT_CHAT_MODEL, {})
    if info.get("state") in (None, "unloaded"):
        schedule_load([settings.DEFAULT_CHAT_MODEL])
    return {
        "ready": info.get("state") == "ready",
        "runner": info.get("runner"),
        "fallback": info.get("fallback"),
    }


_background_tasks: set[asyncio.Task] = set()


def schedule_load(names: list[str]) -> None:
    """Load models in the background on the running event loop; never blocks a request."""

    async def load(name: str) -> None:
        try:
            await get_manager().load(name)
        except Exception:
            logger.exception("loading model %s failed", name)

    for name in names:
        task = asyncio.get_running_loop().create_task(load(name))
        _background_tasks.add(task)  # keep a reference until done
        task.add_done_callback(_background_tasks.discard)
