"""The model-group router on fake backends: weighted least-busy choice, failover before the first
delta, cooldown and half-open recovery, parallel-request caps; no network."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncGenerator

import pytest

from inference.engine import router as router_module
from inference.engine.base import TextGenerator
from inference.engine.router import Deployment, MemoryHealthStore, RoutedTextGenerator, Router
from inference.engine.types import (
    DeploymentSpec,
    GenerationRequest,
    InvalidRequest,
    ModelSpec,
    NoDeploymentAvailable,
    Overloaded,
    SamplingParams,
    TextDelta,
    UpstreamError,
)

SPEC = ModelSpec(name="group", kind="chat", backend="upstream", upstream_url="http://unused.test/v1")
REQUEST = GenerationRequest(params=SamplingParams(), messages=({"role": "user", "content": "hi"},))


class FakeBackend(TextGenerator):
    """Answers its own name, after `hold` (an event the test sets) when given; `fail` raises first."""

    def __init__(self, name: str):
        self.name = name
        self.context_length = 2048
        self.fail: Exception | None = None
        self.fail_mid_stream = False
        self.hold: asyncio.Event | None = None
        self.calls = 0

    def count_prompt_tokens(self, request: GenerationRequest) -> int:
        return 1

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[TextDelta, None]:
        self.calls += 1
        if self.hold is not None:
            await self.hold.wait()
        if self.fail is not None:
            raise self.fail
        yield TextDelta(text=self.name, prompt_tokens=1, completion_tokens=1)
        if self.fail_mid_stream:
            raise UpstreamError("connection lost mid-stream")
        yield TextDelta(text="", prompt_tokens=1, completion_tokens=1, finish_reason="stop")


def group(*backends: FakeBackend, weights=None, caps=None, cooldown_s=30.0, health=None) -> RoutedTextGenerator:
    deployments = [
        Deployment(
            spec=DeploymentSpec(
                id=f"dep-{backend.name}",
                name=backend.name,
                weight=(weights or {}).get(backend.name, 1.0),
                max_parallel_requests=(caps or {}).get(backend.name, 0),
            ),
            backend=backend,
        )
        for backend in backends
    ]
    router = Router("group", deployments, health=health or MemoryHealthStore(), cooldown_s=cooldown_s)
    return RoutedTextGenerator(SPEC, router)


async def answer(generator: RoutedTextGenerator) -> str:
    text, _ = await generator.generate(REQUEST)
    return text


@pytest.mark.asyncio
async def test_sequential_requests_spread_over_equal_deployments():
    a, b, c = FakeBackend("a"), FakeBackend("b"), FakeBackend("c")
    generator = group(a, b, c)
    generator.router._rng = random.Random(7)
    answers = Counter([await answer(generator) for _ in range(300)])
    assert set(answers) == {"a", "b", "c"}
    assert all(60 < count < 140 for count in answers.values()), answers


@pytest.mark.asyncio
async def test_concurrent_requests_go_to_the_least_busy_relative_to_weight():
    heavy, light = FakeBackend("heavy"), FakeBackend("light")
    hold = asyncio.Event()
    heavy.hold = light.hold = hold
    generator = group(heavy, light, weights={"heavy": 3.0, "light": 1.0})
    tasks = [asyncio.create_task(answer(generator)) for _ in range(8)]
    await asyncio.sleep(0.05)
    in_flight = {d.spec.name: d.in_flight for d in generator.router.deployments}
    assert in_flight == {"heavy": 6, "light": 2}
    hold.set()
    assert Counter(await asyncio.gather(*tasks)) == {"heavy": 6, "light": 2}
    assert all(d.in_flight == 0 for d in generator.router.deployments)


@pytest.mark.asyncio
async def test_a_failing_deployment_is_retried_elsewhere_and_cooled_down():
    dead, alive = FakeBackend("dead"), FakeBackend("alive")
    dead.fail = UpstreamError("upstream unreachable (ConnectError)", status=502)
    generator = group(dead, alive)
    assert {await answer(generator) for _ in range(20)} == {"alive"}
    assert dead.calls == 1  # tried once, then skipped while cooling down
    state = {d["name"]: d for d in generator.deployments()}
    assert state["dead"]["healthy"] is False and state["dead"]["last_error"] == "upstream_error"
    assert state["alive"]["healthy"] is True


@pytest.mark.asyncio
async def test_a_cooled_down_deployment_is_tried_again_and_comes_back_on_success():
    flaky, steady = FakeBackend("flaky"), FakeBackend("steady")
    flaky.fail = UpstreamError("upstream answered 503: busy", status=503)
    generator = group(flaky, steady, cooldown_s=0.2)
    generator.router._rng = random.Random(3)
    for _ in range(5):
        await answer(generator)
    assert flaky.calls == 1
    await asyncio.sleep(0.25)
    flaky.fail = None  # recovered; after the cooldown it gets its share again
    answers = Counter([await answer(generator) for _ in range(20)])
    assert answers["flaky"] >= 5
    assert {d["name"]: d["healthy"] for d in generator.deployments()} == {"flaky": True, "steady": True}


@pytest.mark.asyncio
async def test_timeouts_and_5xx_fail_over_but_a_bad_request_does_not():
    first, second = FakeBackend("first"), FakeBackend("second")
    generator = group(first, second)
    generator.router._rng = random.Random(1)
    first.fail = second.fail = InvalidRequest("bad tool schema")
    with pytest.raises(InvalidRequest):
        await answer(generator)
    assert first.calls + second.calls == 1  # the request's fault: not retried, nobody cooled down
    assert all(d["healthy"] for d in generator.deployments())
    first.fail = UpstreamError("upstream timed out (ReadTimeout)", status=504)
    second.fail = None
    assert {await answer(generator) for _ in range(4)} == {"second"}


@pytest.mark.asyncio
async def test_when_every_deployment_fails_the_last_error_is_raised_then_they_cool_down():
    a, b = FakeBackend("a"), FakeBackend("b")
    a.fail = b.fail = UpstreamError("upstream answered 500: boom", status=500)
    generator = group(a, b)
    with pytest.raises(UpstreamError, match="boom"):
        await answer(generator)
    assert a.calls == b.calls == 1
    with pytest.raises(NoDeploymentAvailable) as info:
        await answer(generator)
    assert info.value.status == 503 and info.value.retry_after > 1


@pytest.mark.asyncio
async def test_a_lone_deployment_is_never_cooled_down():
    only = FakeBackend("only")
    only.fail = UpstreamError("upstream unreachable (ConnectError)", status=502)
    generator = group(only)
    for _ in range(3):
        with pytest.raises(UpstreamError):
            await answer(generator)
    assert only.calls == 3


@pytest.mark.asyncio
async def test_a_failure_after_the_first_delta_reaches_the_caller_and_cools_the_deployment():
    broken, other = FakeBackend("broken"), FakeBackend("other")
    broken.fail_mid_stream = True
    broken.hold, other.hold = asyncio.Event(), asyncio.Event()
    generator = group(broken, other)
    tasks = [asyncio.create_task(answer(generator)) for _ in range(2)]  # one on each
    await asyncio.sleep(0.01)
    broken.hold.set()
    other.hold.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and "mid-stream" in str(errors[0]) and "other" in results
    assert {d["name"]: d["healthy"] for d in generator.deployments()} == {"broken": False, "other": True}


@pytest.mark.asyncio
async def test_parallel_request_caps_route_elsewhere_then_answer_overloaded():
    capped, spare = FakeBackend("capped"), FakeBackend("spare")
    capped.hold = spare.hold = asyncio.Event()
    generator = group(capped, spare, caps={"capped": 1, "spare": 1})
    first = asyncio.create_task(answer(generator))
    second = asyncio.create_task(answer(generator))
    await asyncio.sleep(0.01)
    with pytest.raises(Overloaded):
        await answer(generator)
    capped.hold.set()
    assert sorted(await asyncio.gather(first, second)) == ["capped", "spare"]


@pytest.mark.asyncio
async def test_cooldowns_are_shared_through_the_health_store():
    """Two routers (two worker processes) over one store: one's failure cools the other's too."""
    shared = MemoryHealthStore()
    dead_here, alive_here = FakeBackend("x"), FakeBackend("y")
    dead_here.fail = UpstreamError("refused", status=502)
    here = group(dead_here, alive_here, health=shared)
    while not dead_here.calls:
        await answer(here)
    x_elsewhere, y_elsewhere = FakeBackend("x"), FakeBackend("y")
    elsewhere = group(x_elsewhere, y_elsewhere, health=shared)
    assert {await answer(elsewhere) for _ in range(10)} == {"y"}
    assert x_elsewhere.calls == 0


@pytest.mark.asyncio
async def test_every_try_is_observed_with_its_outcome(monkeypatch):
    seen: list[tuple[str, str, str]] = []
    monkeypatch.setattr(
        router_module, "_observer", lambda model, dep, outcome, seconds: seen.append((model, dep, outcome))
    )
    dead, alive = FakeBackend("dead"), FakeBackend("alive")
    dead.fail = UpstreamError("refused", status=502)
    generator = group(dead, alive)
    generator.router._rng = random.Random(0)
    while not seen or seen[-1][1] != "alive" or ("group", "dead", "error") not in seen:
        await answer(generator)
    assert ("group", "dead", "error") in seen and ("group", "alive", "ok") in seen


@pytest.mark.asyncio
async def test_redis_health_store_falls_back_to_this_process_when_redis_is_down():
    store = router_module.RedisHealthStore("redis://127.0.0.1:1/0", refresh_s=0.0)
    await store.cool_down("d1", 5)
    cooling = await store.cooling(["d1", "d2"])
    assert set(cooling) == {"d1"} and cooling["d1"] > time.time()
    await store.recover("d1")
    assert await store.cooling(["d1"]) == {}


REDIS_TEST_URL = "redis://127.0.0.1:6379/11"


def _redis_up() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=0.3).ping())
    except Exception:
        return False


@pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")
@pytest.mark.asyncio
async def test_redis_health_store_shares_cooldowns_between_workers():
    prefix = f"test-{time.monotonic_ns()}"
    one = router_module.RedisHealthStore(REDIS_TEST_URL, prefix=prefix, refresh_s=0.0)
    two = router_module.RedisHealthStore(REDIS_TEST_URL, prefix=prefix, refresh_s=0.0)
    await one.cool_down("d1", 0.5)
    assert set(await two.cooling(["d1", "d2"])) == {"d1"}
    await asyncio.sleep(0.6)  # the key expires with the cooldown
    assert await two.cooling(["d1", "d2"]) == {}
    await two.cool_down("d2", 30)
    await one.recover("d2")
    assert await two.cooling(["d2"]) == {}
