"""The official openai SDK, unchanged, against a live server running the real embedded models."""

from __future__ import annotations

import math

import httpx
import openai
import pytest

pytestmark = pytest.mark.e2e
CHAT_MODEL = "SmolLM2-135M-Instruct"
EMBED_MODEL = "all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def api_key(portal_server) -> str:
    return portal_server.create_user_and_key("sdk@example.com")


@pytest.fixture(scope="module")
def sdk(portal_server, api_key) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{portal_server.url}/v1", api_key=api_key, max_retries=0, timeout=120)


def test_chat_completion(sdk):
    completion = sdk.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "What is the capital of France? Answer in one word."}],
        max_tokens=16,
        temperature=0,
    )
    assert completion.object == "chat.completion" and completion.model == CHAT_MODEL
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and "Paris" in choice.message.content
    assert choice.finish_reason in ("stop", "length")
    usage = completion.usage
    assert usage.prompt_tokens > 0 and 0 < usage.completion_tokens <= 16
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_chat_completion_streams_with_usage(sdk):
    stream = sdk.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Count from one to ten in words."}],
        max_tokens=24,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert len({chunk.id for chunk in chunks}) == 1 and len({chunk.created for chunk in chunks}) == 1
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    content_chunks = [chunk for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]
    assert len(content_chunks) > 3  # tokens really arrive one by one
    finals = [chunk for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert len(finals) == 1
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [] and usage_chunk.usage.completion_tokens > 0
    assert all(chunk.usage is None for chunk in chunks[:-1])

    # The streamed text equals the non-streamed greedy answer for the same request.
    text = "".join(chunk.choices[0].delta.content for chunk in content_chunks)
    plain = sdk.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Count from one to ten in words."}],
        max_tokens=24,
        temperature=0,
    )
    assert text == plain.choices[0].message.content
    assert usage_chunk.usage.completion_tokens == plain.usage.completion_tokens


def test_text_completion_and_stop(sdk):
    completion = sdk.completions.create(
        model=CHAT_MODEL, prompt="1, 2, 3, 4,", max_tokens=20, temperature=0, stop=["8"]
    )
    assert completion.object == "text_completion"
    text = completion.choices[0].text
    assert "8" not in text and "5" in text
    assert completion.choices[0].finish_reason == "stop"


def test_seeded_sampling_is_reproducible_and_n_gives_several_choices(sdk):
    def sample():
        return sdk.chat.completions.create(
            model=CHAT_MODEL,
            messages=[{"role": "user", "content": "Invent a name for a cat."}],
            max_tokens=12,
            temperature=1.0,
            seed=1234,
            n=2,
        )

    first, second = sample(), sample()
    assert len(first.choices) == 2 and [c.index for c in first.choices] == [0, 1]
    assert [c.message.content for c in first.choices] == [c.message.content for c in second.choices]


def test_embeddings_default_base64_and_float(sdk):
    result = sdk.embeddings.create(model=EMBED_MODEL, input=["The cat sat on the mat.", "A kitten rests on a rug."])
    assert [item.index for item in result.data] == [0, 1]
    vectors = [item.embedding for item in result.data]
    assert all(len(vector) == 384 for vector in vectors)
    assert all(abs(math.sqrt(sum(x * x for x in vector)) - 1) < 1e-3 for vector in vectors)
    assert result.usage.prompt_tokens > 0
    floats = sdk.embeddings.create(model=EMBED_MODEL, input="The cat sat on the mat.", encoding_format="float")
    assert floats.data[0].embedding == pytest.approx(vectors[0], abs=1e-5)


def test_model_listing(sdk):
    ids = {model.id for model in sdk.models.list()}
    assert {CHAT_MODEL, EMBED_MODEL} <= ids
    assert sdk.models.retrieve(CHAT_MODEL).id == CHAT_MODEL


def test_typed_errors(portal_server, sdk):
    bad = openai.OpenAI(base_url=f"{portal_server.url}/v1", api_key="llmos_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    with pytest.raises(openai.NotFoundError) as not_found:
        sdk.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
    assert not_found.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad_request:
        sdk.chat.completions.create(model=CHAT_MODEL, messages=[{"role": "user", "content": "hi"}], temperature=5)
    assert bad_request.value.param == "temperature"
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(model=CHAT_MODEL, messages=[])


def test_context_too_long_is_a_clear_400(sdk):
    with pytest.raises(openai.BadRequestError) as error:
        sdk.completions.create(model=CHAT_MODEL, prompt="word " * 9000, max_tokens=10)
    assert error.value.code == "context_length_exceeded"


def test_dropped_stream_frees_the_server_and_is_billed(portal_server):
    """A client that disconnects mid-stream: generation stops, the tokens it was sent are billed,
    and the next request is served."""
    api_key = portal_server.create_user_and_key("dropper@example.com")
    body = {
        "model": CHAT_MODEL,
        "messages": [{"role": "user", "content": "Write a very long story about the sea."}],
        "max_tokens": 400,
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(timeout=60) as http:
        with http.stream("POST", f"{portal_server.url}/v1/chat/completions", json=body, headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["x-request-id"]
            for index, _line in enumerate(response.iter_lines()):
                if index > 6:
                    break  # leave mid-stream
        follow_up = http.post(
            f"{portal_server.url}/v1/chat/completions",
            json={**body, "stream": False, "max_tokens": 4},
            headers=headers,
        )
    assert follow_up.status_code == 200
    dropped, served = portal_server.usage_rows("dropper@example.com", expected=2)
    assert dropped["streamed"] and dropped["client_disconnected"] and dropped["status_code"] == 200
    assert 0 < dropped["completion_tokens"] < 400 and dropped["prompt_tokens"] > 0
    assert served["completion_tokens"] == follow_up.json()["usage"]["completion_tokens"]


def test_native_tasks(portal_server, api_key):
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=portal_server.url, headers=headers, timeout=120) as http:
        generated = http.post("/api/v1/generate", json={"prompt": "Say hello.", "max_length": 12}).json()
        assert generated["text"] and 0 < generated["completion_tokens"] <= 12
        answer = http.post(
            "/api/v1/ask",
            json={"question": "What colour is the door?", "context": "The house has a red door.", "max_length": 20},
        ).json()
        assert "red" in answer["answer"].lower()


CLASSIFY_CASES = [
    ("The striker scored twice in the second half and the team won the cup.", "sports"),
    ("Parliament passed the new budget after a long debate between the parties.", "politics"),
    ("Whisk the eggs with sugar, then fold in the flour and bake for 20 minutes.", "cooking"),
    ("The new phone has a faster chip and a brighter screen.", "technology"),
    ("The goalkeeper saved a penalty in the final minute.", "sports"),
    ("The senator announced she will run for re-election.", "politics"),
    ("Simmer the tomato sauce with garlic and basil.", "cooking"),
    ("The software update fixes a security flaw in the operating system.", "technology"),
]


def test_classify_is_mostly_right_on_a_labelled_set(portal_server, api_key):
    labels = ["sports", "politics", "cooking", "technology"]
    headers = {"Authorization": f"Bearer {api_key}"}
    correct = 0
    with httpx.Client(base_url=portal_server.url, headers=headers, timeout=60) as http:
        for text, expected in CLASSIFY_CASES:
            result = http.post("/api/v1/classify", json={"text": text, "labels": labels}).json()
            assert sum(item["score"] for item in result["scores"]) == pytest.approx(1.0, abs=1e-4)
            correct += result["label"] == expected
    assert correct / len(CLASSIFY_CASES) >= 0.75
