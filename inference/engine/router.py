"""Model groups: one public model name served by several deployments (upstream servers and/or the
model's own in-process runner), with weighted least-busy routing, failover and cooldown.

A request goes to the healthy deployment with free capacity and the lowest in-flight / weight
(ties broken at random, in proportion to weight). A deployment that fails before the first delta
reaches the caller (connect error, timeout, 5xx or 429 from an upstream; a load error or a full
queue in-process) is counted, cooled down for `cooldown_s` (when the group has more than one
deployment: a lone deployment is always tried) and the request moves on to the next one. After the
cooldown the deployment is tried again (half-open: one request at a time); a success brings it
back for good.

Cooldowns live in a HealthStore: this process's memory by default, Redis (shared by every worker)
when the portal has REDIS_URL. Plain Python: no Django here.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .base import Embedder, TextGenerator
from .types import (
    ContextLengthExceeded,
    DeploymentSpec,
    EmbeddingResult,
    EmbedProgress,
    EngineError,
    GenerationRequest,
    InvalidRequest,
    ModelLoadError,
    ModelSpec,
    NoDeploymentAvailable,
    Overloaded,
    TextDelta,
    UpstreamError,
)

log = logging.getLogger(__name__)

DEFAULT_COOLDOWN_S = 30.0
T = TypeVar("T")

# (model, deployment name, outcome "ok" | "error", seconds): set by the portal to feed /metrics.
Observer = Callable[[str, str, str, float], None]
_observer: Observer | None = None


def set_observer(observer: Observer | None) -> None:
    global _observer
    _observer = observer


# --- health ------------------------------------------------------------------------------------


class HealthStore(ABC):
    """Where cooldowns live: deployment id -> wall-clock time its cooldown ends."""

    @abstractmethod
    async def cooling(self, ids: Sequence[str]) -> dict[str, float]:
        """The ids among `ids` that are cooling down now, with when each cooldown ends."""

    @abstractmethod
    async def cool_down(self, deployment_id: str, seconds: float) -> None: ...

    @abstractmethod
    async def recover(self, deployment_id: str) -> None: ...


class MemoryHealthStore(HealthStore):
    """This process's cooldowns (the default, tests, and Redis's fallback)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}

    async def cooling(self, ids: Sequence[str]) -> dict[str, float]:
        now = time.time()
        with self._lock:
            return {i: self._until[i] for i in ids if self._until.get(i, 0.0) > now}

    async def cool_down(self, deployment_id: str, seconds: float) -> None:
        with self._lock:
            self._until[deployment_id] = time.time() + seconds

    async def recover(self, deployment_id: str) -> None:
        with self._lock:
            self._until.pop(deployment_id, None)


class RedisHealthStore(HealthStore):
    """Cooldowns shared by every worker: one key per cooling deployment, expiring with it.

    Reads are cached for `refresh_s` (a request costs no round trip most of the time); while Redis
    is unreachable this process's own MemoryHealthStore stands in."""

    def __init__(self, url: str, *, prefix: str = "llmos", refresh_s: float = 1.0) -> None:
        self.url = url
        self.prefix = prefix
        self.refresh_s = refresh_s
        self.local = MemoryHealthStore()
        self._clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # one per event loop
        self._cache: dict[tuple[str, ...], tuple[float, dict[str, float]]] = {}
        self._down_until = 0.0

    def _key(self, deployment_id: str) -> str:
        return f"{self.prefix}:deployment-cooldown:{deployment_id}"

    def _client(self) -> Any:
        import redis.asyncio as aioredis

        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = aioredis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=0.5)
            self._clients[loop] = client
        return client

    def _redis_down(self, exc: Exception) -> None:
        if time.monotonic() >= self._down_until:
            log.warning("Redis unreachable for deployment health (%s); using this process's view", exc)
        self._down_until = time.monotonic() + 5.0

    async def cooling(self, ids: Sequence[str]) -> dict[str, float]:
        group = tuple(ids)
        cached = self._cache.get(group)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.refresh_s:
            wall = time.time()
            return {i: until for i, until in cached[1].items() if until > wall}
        if now < self._down_until:
            return await self.local.cooling(ids)
        try:
            values = await self._client().mget([self._key(i) for i in group])
        except Exception as exc:
            self._redis_down(exc)
            return await self.local.cooling(ids)
        found = {i: float(v) for i, v in zip(group, values, strict=True) if v is not None}
        self._cache[group] = (now, found)
        return {i: until for i, until in found.items() if until > time.time()}

    async def cool_down(self, deployment_id: str, seconds: float) -> None:
        await self.local.cool_down(deployment_id, seconds)
        self._cache.clear()
        until = time.time() + seconds
        try:
            await self._client().set(self._key(deployment_id), str(until), px=max(1, int(seconds * 1000)))
        except Exception as exc:
            self._redis_down(exc)

    async def recover(self, deployment_id: str) -> None:
        await self.local.recover(deployment_id)
        self._cache.clear()
        try:
            await self._client().delete(self._key(deployment_id))
        except Exception as exc:
            self._redis_down(exc)


# --- routing -------------------------------------------------------------------------------------


B = TypeVar("B")


@dataclass(eq=False)
class Deployment(Generic[B]):
    spec: DeploymentSpec
    backend: B
    in_flight: int = 0
    failures: int = 0  # consecutive
    cooling_until: float = 0.0  # wall clock, as last seen by this process
    last_error: str = ""

    @property
    def healthy(self) -> bool:
        return time.time() >= self.cooling_until

    def state(self) -> dict:
        return {
            "id": self.spec.id,
            "name": self.spec.name,
            "kind": self.spec.kind,
            "weight": self.spec.weight,
            "in_flight": self.in_flight,
            "healthy": self.healthy,
            "cooldown_left_s": max(0.0, round(self.cooling_until - time.time(), 1)),
            "failures": self.failures,
            "last_error": self.last_error,
        }


def retriable(exc: BaseException) -> bool:
    """Failures another deployment may not have: the server's, not the request's."""
    if isinstance(exc, InvalidRequest | ContextLengthExceeded):
        return False
    if isinstance(exc, UpstreamError):
        return exc.status >= 500 or exc.status == 429
    return isinstance(exc, Overloaded | ModelLoadError)


class Router(Generic[B]):
    def __init__(
        self,
        model: str,
        deployments: list[Deployment[B]],
        *,
        health: HealthStore | None = None,
        cooldown_s: float = DEFAULT_COOLDOWN_S,
        rng: random.Random | None = None,
    ):
        if not deployments:
            raise ModelLoadError(f"model {model!r} has no enabled deployment")
        self.model = model
        self.deployments = deployments
        self.health = health or MemoryHealthStore()
        self.cooldown_s = cooldown_s
        self._rng = rng or random.Random()

    @property
    def uses_cooldown(self) -> bool:
        return len(self.deployments) > 1

    async def _pick(self, tried: set[str]) -> Deployment[B]:
        untried = [d for d in self.deployments if d.spec.id not in tried]
        if not untried:
            raise NoDeploymentAvailable(f"every deployment of {self.model!r} failed", status=502)
        if self.uses_cooldown:
            cooling = await self.health.cooling([d.spec.id for d in self.deployments])
            for d in self.deployments:
                d.cooling_until = cooling.get(d.spec.id, 0.0)
            healthy = [d for d in untried if d.spec.id not in cooling]
        else:
            healthy = untried
        # Half-open: a deployment back from a cooldown takes one trial request at a time until one succeeds.
        healthy = [d for d in healthy if not (d.failures and d.in_flight and self.uses_cooldown)]
        free = [d for d in healthy if not d.spec.max_parallel_requests or d.in_flight < d.spec.max_parallel_requests]
        if not free:
            if healthy:
                raise Overloaded(f"every deployment of {self.model!r} is at its parallel-request limit")
            wait = min(d.cooling_until for d in untried) - time.time()
            raise NoDeploymentAvailable(
                f"every deployment of {self.model!r} is cooling down after failures", retry_after=max(1.0, wait)
            )
        best = min(d.in_flight / max(d.spec.weight, 1e-9) for d in free)
        ties = [d for d in free if math.isclose(d.in_flight / max(d.spec.weight, 1e-9), best)]
        if len(ties) == 1:
            return ties[0]
        return self._rng.choices(ties, weights=[max(d.spec.weight, 1e-9) for d in ties])[0]

    def _observe(self, dep: Deployment[B], outcome: str, started: float) -> None:
        if _observer is not None:
            try:
                _observer(self.model, dep.spec.name, outcome, time.perf_counter() - started)
            except Exception:  # metrics never break a request
                log.exception("deployment observer failed")

    async def _failed(self, dep: Deployment[B], exc: BaseException, started: float) -> None:
        self._observe(dep, "error", started)
        if not retriable(exc):
            return  # the request's fault, not the deployment's
        dep.failures += 1
        dep.last_error = type(exc).__name__ if not isinstance(exc, EngineError) else exc.code
        if self.uses_cooldown:
            dep.cooling_until = time.time() + self.cooldown_s
            await self.health.cool_down(dep.spec.id, self.cooldown_s)
            log.warning(
                "model %s: deployment %s failed (%s); cooling down %.0f s",
                self.model,
                dep.spec.name,
                dep.last_error,
                self.cooldown_s,
            )

    async def _succeeded(self, dep: Deployment[B], started: float) -> None:
        self._observe(dep, "ok", started)
        if dep.failures:
            dep.failures, dep.last_error, dep.cooling_until = 0, "", 0.0
            if self.uses_cooldown:
                await self.health.recover(dep.spec.id)

    async def run(self, call: Callable[[Deployment[B]], Awaitable[T]]) -> T:
        """`call` on one deployment after another until one succeeds (non-streaming work)."""
        tried: set[str] = set()
        while True:
            dep = await self._pick(tried)
            tried.add(dep.spec.id)
            started = time.perf_counter()
            dep.in_flight += 1
            try:
                result = await call(dep)
            except EngineError as exc:
                await self._failed(dep, exc, started)
                if not retriable(exc):
                    raise
                if len(tried) == len(self.deployments):
                    raise
                continue
            finally:
                dep.in_flight -= 1
            await self._succeeded(dep, started)
            return result

    async def stream(
        self, open_stream: Callable[[Deployment[B]], AsyncGenerator[TextDelta, None]]
    ) -> AsyncGenerator[TextDelta, None]:
        """The deltas of one deployment's stream. Failures before its first delta move on to the
        next deployment; after it, they reach the caller (the client has seen output)."""
        tried: set[str] = set()
        while True:
            dep = await self._pick(tried)
            tried.add(dep.spec.id)
            started = time.perf_counter()
            dep.in_flight += 1
            inner = open_stream(dep)
            delivered = failed = False
            try:
                try:
                    first = await anext(inner)
                except StopAsyncIteration:
                    first = None
                except EngineError as exc:
                    failed = True
                    await self._failed(dep, exc, started)
                    if not retriable(exc) or len(tried) == len(self.deployments):
                        raise
                    continue
                if first is None:
                    failed = True
                    empty = UpstreamError("the deployment ended without an answer")
                    await self._failed(dep, empty, started)
                    raise empty
                delivered = True
                yield first
                try:
                    async for delta in inner:
                        yield delta
                except EngineError as exc:
                    failed = True
                    await self._failed(dep, exc, started)
                    raise
                return
            finally:
                dep.in_flight -= 1
                await inner.aclose()
                if delivered and not failed:  # also when the caller stops reading after what it needed
                    await self._succeeded(dep, started)

    def state(self) -> list[dict]:
        return [d.state() for d in self.deployments]


# --- routed backends -----------------------------------------------------------------------------


class _Routed:
    """What both routed backends share: the group's router, its deployments' runner and state."""

    router: Router

    def _route(self, spec: ModelSpec, router: Router) -> None:
        self.name = spec.name
        self.spec = spec
        self.context_length = spec.context_length
        self.router = router
        local = [d.backend for d in router.deployments if d.spec.kind == "in_process"]
        self.runner = getattr(local[0], "runner", None) if local else "upstream"
        self.fallback = getattr(local[0], "fallback", None) if local else None

    def deployments(self) -> list[dict]:
        return self.router.state()

    async def aclose(self) -> None:
        for d in self.router.deployments:
            await d.backend.aclose()

    def close(self) -> None:
        for d in self.router.deployments:
            d.backend.close()


class RoutedTextGenerator(_Routed, TextGenerator):
    """A model group's chat/completion backend: each request on one of its deployments."""

    def __init__(self, spec: ModelSpec, router: Router[TextGenerator]):
        self._route(spec, router)

    def count_prompt_tokens(self, request: GenerationRequest) -> int:
        # An in-process deployment counts exactly; an upstream estimates.
        local = [d for d in self.router.deployments if d.spec.kind == "in_process"]
        return (local or self.router.deployments)[0].backend.count_prompt_tokens(request)

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[TextDelta, None]:
        async for delta in self.router.stream(lambda dep: dep.backend.stream(request)):
            yield delta

    def stats(self) -> dict:
        queue = sum(int(d.backend.stats().get("queue_depth", 0)) for d in self.router.deployments)
        return {"queue_depth": queue, "running": sum(d.in_flight for d in self.router.deployments)}


class RoutedEmbedder(_Routed, Embedder):
    """A model group's embeddings backend."""

    def __init__(self, spec: ModelSpec, router: Router[Embedder]):
        self._route(spec, router)

    @property
    def dimensions(self) -> int:  # type: ignore[override]  # known once a deployment answered
        return max((d.backend.dimensions for d in self.router.deployments), default=0)

    async def embed(self, texts: list[str], progress: EmbedProgress | None = None) -> EmbeddingResult:
        return await self.router.run(lambda dep: dep.backend.embed(texts, progress))

    def stats(self) -> dict:
        return {"queue_depth": 0, "running": sum(d.in_flight for d in self.router.deployments)}
