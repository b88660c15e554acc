"""The in-process SmolLM2 backend and its continuous-batching scheduler, on the real model."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
import torch

from inference.engine.local import TransformersTextGenerator
from inference.engine.text import IncrementalDetokenizer
from inference.engine.types import (
    ContextLengthExceeded,
    EngineError,
    GenerationRequest,
    ModelSpec,
    Overloaded,
    SamplingParams,
)

from .conftest import CHAT, chat, check_chunked_prefill

pytestmark = pytest.mark.model

PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain gravity in one sentence.",
    "List three fruits.",
]


def reference_greedy(gen: TransformersTextGenerator, request: GenerationRequest) -> tuple[str, int]:
    ids = torch.tensor([gen.encode(request)])
    with torch.inference_mode():
        out = gen.model.generate(
            ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=request.params.max_tokens
        )
    new = out[0, ids.shape[1] :]
    return gen.tokenizer.decode(new, skip_special_tokens=True), len(new)


async def collect(gen: TransformersTextGenerator, request: GenerationRequest) -> tuple[str, list]:
    deltas = [d async for d in gen.stream(request)]
    return "".join(d.text for d in deltas), deltas


async def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_greedy_output_equals_model_generate(make_gen):
    gen = make_gen()
    for prompt in PROMPTS[:2]:
        request = chat(prompt, max_tokens=24)
        expected, n_tokens = reference_greedy(gen, request)
        text, final = await gen.generate(request)
        assert text == expected
        assert final.completion_tokens == n_tokens
        assert final.prompt_tokens == gen.count_prompt_tokens(request)


@pytest.mark.asyncio
async def test_stream_deltas_concatenate_and_count_tokens(make_gen):
    gen = make_gen()
    text, deltas = await collect(gen, chat(PROMPTS[1], max_tokens=20))
    assert len(deltas) > 3 and text.strip()
    assert all(d.finish_reason is None for d in deltas[:-1])
    assert deltas[-1].finish_reason in ("stop", "length")
    counts = [d.completion_tokens for d in deltas]
    assert counts == sorted(counts) and counts[-1] <= 20
    assert "\ufffd" not in text


def test_detokenizer_handles_multibyte_and_spacing(smol):
    tok = smol.tokenizer
    source = "Héllo wörld — 世界 🙂 naïve café, 你好!"
    ids = tok(source, add_special_tokens=False)["input_ids"]
    detok = IncrementalDetokenizer(tok, tok("Say:", add_special_tokens=False)["input_ids"])
    pieces = [detok.push(i) for i in ids] + [detok.flush()]
    assert "".join(pieces) == tok.decode(ids) == source
    assert not any("\ufffd" in p for p in pieces)


@pytest.mark.asyncio
async def test_stop_string_is_trimmed(make_gen):
    gen = make_gen()
    full, _ = await gen.generate(chat(PROMPTS[2], max_tokens=24))
    words = full.split()
    assert len(words) > 4
    stop = " " + words[3]
    text, final = await gen.generate(chat(PROMPTS[2], max_tokens=24, stop=(stop, "zzzz-never")))
    assert text == full[: full.index(stop)]
    assert final.finish_reason == "stop"


@pytest.mark.asyncio
async def test_max_tokens_finishes_with_length(make_gen):
    gen = make_gen()
    text, final = await gen.generate(chat("Write a long story about a dragon.", max_tokens=5))
    assert final.finish_reason == "length"
    assert final.completion_tokens == 5
    assert text


@pytest.mark.asyncio
async def test_concurrent_requests_share_one_batch_and_match_solo_output(make_gen):
    gen = make_gen(max_batch_size=8)
    requests = [
        chat(PROMPTS[0], max_tokens=16),
        chat(PROMPTS[1], max_tokens=24),
        chat(PROMPTS[2], max_tokens=20, stop=("zzzz",)),
        chat(PROMPTS[3], max_tokens=18, temperature=0.8, top_p=0.9, seed=7),
    ]
    solo = [await gen.generate(r) for r in requests]
    assert gen.stats()["max_batch_seen"] == 1
    together = await asyncio.gather(*(gen.generate(r) for r in requests))
    assert gen.stats()["max_batch_seen"] == len(requests)
    for request, (solo_text, solo_final), (text, final) in zip(requests, solo, together, strict=True):
        if request.params.temperature == 0:  # greedy rows are batch-invariant
            assert text == solo_text
            assert final.completion_tokens == solo_final.completion_tokens
        else:  # sampled rows see bf16 logits that may differ in the last bit inside a batch
            assert text and final.finish_reason in ("stop", "length")


@pytest.mark.asyncio
async def test_seed_makes_sampling_reproducible(make_gen):
    gen = make_gen()
    sampled = {"max_tokens": 16, "temperature": 1.0, "top_p": 0.95, "presence_penalty": 0.5, "frequency_penalty": 0.3}
    a, _ = await gen.generate(chat(PROMPTS[1], seed=1234, **sampled))
    b, _ = await gen.generate(chat(PROMPTS[1], seed=1234, **sampled))
    others = {(await gen.generate(chat(PROMPTS[1], seed=s, **sampled)))[0] for s in (1, 2, 3)}
    assert a == b
    assert len(others | {a}) > 1  # different seeds explore different continuations


@pytest.mark.asyncio
async def test_cancelled_stream_leaves_batch_within_a_few_steps(make_gen):
    gen = make_gen()
    stream = gen.stream(chat("Write a very long essay about the ocean.", max_tokens=400))
    await anext(stream)
    await anext(stream)
    assert gen.stats()["running"] == 1
    tokens_at_cancel = gen.stats()["tokens"]
    await stream.aclose()
    await wait_until(lambda: gen.stats()["running"] == 0, timeout=2.0)
    assert gen.stats()["tokens"] - tokens_at_cancel <= 4
    # the freed slot serves the next request
    _, final = await gen.generate(chat(PROMPTS[0], max_tokens=4))
    assert final.finish_reason in ("stop", "length")


@pytest.mark.asyncio
async def test_task_cancellation_frees_slot(make_gen):
    gen = make_gen()
    first = asyncio.Event()

    async def consume():
        async for _ in gen.stream(chat("Count from one to one thousand.", max_tokens=400)):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_until(lambda: gen.stats()["running"] == 0, timeout=2.0)


@pytest.mark.asyncio
async def test_full_queue_raises_overloaded(make_gen):
    gen = make_gen(max_queue=1, max_batch_size=1)
    running = gen.stream(chat("Write a long poem.", max_tokens=300))
    await anext(running)  # admitted: holds the only batch slot
    waiting = asyncio.create_task(anext(gen.stream(chat("Hi", max_tokens=4))))
    await wait_until(lambda: gen.stats()["queue_depth"] == 1)
    with pytest.raises(Overloaded):
        await anext(gen.stream(chat("Hello", max_tokens=4)))
    await running.aclose()
    first = await asyncio.wait_for(waiting, 10)  # the queued one runs once the slot frees
    assert first.completion_tokens >= 1
    await wait_until(lambda: gen.stats()["running"] == 0)


@pytest.mark.asyncio
async def test_prompt_too_long_raises_before_any_delta(make_gen):
    gen = make_gen(ModelSpec(name="tiny-ctx", kind="chat", backend="transformers", context_length=64))
    assert gen.context_length == 64
    with pytest.raises(ContextLengthExceeded, match="maximum context length is 64"):
        await anext(gen.stream(chat("word " * 80, max_tokens=4)))
    with pytest.raises(ContextLengthExceeded):
        await anext(gen.stream(chat("short", max_tokens=60)))
    assert gen.stats()["admitted"] == 0


@pytest.mark.asyncio
async def test_raw_prompt_completion(make_gen):
    gen = make_gen()
    request = GenerationRequest(params=SamplingParams(max_tokens=8, temperature=0), prompt="The capital of France is")
    expected, _ = reference_greedy(gen, request)
    text, final = await gen.generate(request)
    assert text == expected and final.completion_tokens == 8


class _FlakyModel:
    """Wraps the real model; raises on decode steps while `broken` is set."""

    def __init__(self, model):
        self.model = model
        self.config = model.config
        self.generation_config = model.generation_config
        self.broken = False

    def parameters(self):
        return self.model.parameters()

    def __call__(self, **kwargs):
        if self.broken and kwargs["input_ids"].shape[1] == 1:
            raise RuntimeError("simulated kernel failure")
        return self.model(**kwargs)


@pytest.mark.asyncio
async def test_model_exception_fails_request_and_thread_survives(smol):
    flaky = _FlakyModel(smol.model)
    gen = TransformersTextGenerator(CHAT, flaky, smol.tokenizer)
    try:
        flaky.broken = True
        with pytest.raises(EngineError, match="simulated kernel failure"):
            await gen.generate(chat(PROMPTS[0], max_tokens=8))
        assert gen.stats()["failed"] == 1 and gen.stats()["running"] == 0
        flaky.broken = False
        text, final = await gen.generate(chat(PROMPTS[0], max_tokens=8))
        assert text and final.finish_reason
    finally:
        gen.close()


@pytest.mark.model
@pytest.mark.asyncio
async def test_long_prompt_is_prefilled_in_chunks_while_running_streams_keep_going(make_gen):
    await check_chunked_prefill(make_gen(max_batch_size=4, prefill_chunk=32), chunk=32)


@pytest.mark.model
@pytest.mark.asyncio
async def test_a_cancelled_sequence_still_prefilling_frees_its_partial_cache(make_gen):
    gen = make_gen(max_batch_size=2, prefill_chunk=16)
    stream = gen.stream(chat("Describe: " + " ".join(f"fact {i}." for i in range(60)), max_tokens=4))
    task = asyncio.create_task(anext(stream))
    for _ in range(2000):  # until some chunks are in
        if gen.stats()["kv_tokens"]:
            break
        await asyncio.sleep(0.005)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await stream.aclose()
    for _ in range(200):
        if gen.stats()["kv_tokens"] == 0 and gen.stats()["running"] == 0:
            break
        await asyncio.sleep(0.01)
    assert gen.stats()["kv_tokens"] == 0 and gen.stats()["running"] == 0
    assert gen.torch_runner._partial == {}
