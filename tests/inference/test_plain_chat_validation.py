"""The plain-chat fast path of request validation gives exactly what ChatCompletionSerializer gives,
and leaves everything out of the ordinary (and every error) to it."""

from __future__ import annotations

import math

import pytest

from inference.errors import ApiError
from inference.serializers import MAX_TEXT_CHARS, ChatCompletionSerializer, _new_serializer, _plain_chat, validated

HI = [{"role": "user", "content": "hi"}]

PLAIN = [
    {"model": "m", "messages": HI},
    {"model": "SmolLM2-135M-Instruct", "messages": HI, "max_tokens": 1, "stream": True},
    {"model": "m", "messages": HI, "temperature": 0, "top_p": 1, "n": 4, "seed": -(2**63)},
    {"model": "m", "messages": HI, "temperature": 2.0, "top_p": 0.0, "seed": 2**63 - 1, "stream": False},
    {"model": "m", "messages": HI, "presence_penalty": -2, "frequency_penalty": 1.5, "user": ""},
    {"model": "m", "messages": HI, "max_completion_tokens": 7, "user": "end-user-42"},
    {"model": "m", "messages": HI, "max_completion_tokens": 7, "max_tokens": 3},
    {"model": "m", "messages": HI, "stop": "END"},
    {"model": "m", "messages": HI, "stop": ["a", "b", "c", "d"]},
    {"model": "m", "messages": HI, "stop": []},
    {
        "model": "m",
        "messages": [
            {"role": "developer", "content": " be brief \n"},
            {"role": "system", "content": ""},
            {"role": "user", "content": "héllo 世界\x00"},
            {"role": "assistant", "content": "  "},
        ],
    },
    {"model": "m", "messages": [{"role": "user", "content": "x" * MAX_TEXT_CHARS}]},
]

# Out of the ordinary: the fast path declines, the serializer decides (accepts or words the error).
UNUSUAL = [
    {"model": "m", "messages": HI, "max_tokens": None},
    {"model": "m", "messages": HI, "max_tokens": 0},
    {"model": "m", "messages": HI, "max_tokens": True},
    {"model": "m", "messages": HI, "max_tokens": 1.0},
    {"model": "m", "messages": HI, "max_tokens": 10**30},
    {"model": "m", "messages": HI, "temperature": 2.01},
    {"model": "m", "messages": HI, "temperature": "0.5"},
    {"model": "m", "messages": HI, "temperature": math.inf},
    {"model": "m", "messages": HI, "temperature": math.nan},
    {"model": "m", "messages": HI, "n": 5},
    {"model": "m", "messages": HI, "seed": 2**63},
    {"model": "m", "messages": HI, "stream": 1},
    {"model": "m", "messages": HI, "stream": None},
    {"model": "m", "messages": HI, "stream_options": {"include_usage": True}},
    {"model": "m", "messages": HI, "stop": ["a", ""]},
    {"model": "m", "messages": HI, "stop": ["a", "b", "c", "d", "e"]},
    {"model": "m", "messages": HI, "stop": [1]},
    {"model": "m", "messages": HI, "user": " padded "},
    {"model": "m", "messages": HI, "user": "u" * 257},
    {"model": "m", "messages": HI, "user": "naïve"},
    {"model": "m", "messages": HI, "tools": []},
    {"model": "m", "messages": HI, "unknown": 1},
    {"model": " m ", "messages": HI},
    {"model": "", "messages": HI},
    {"model": "m" * 201, "messages": HI},
    {"model": "m\x00", "messages": HI},
    {"model": 3, "messages": HI},
    {"messages": HI},
    {"model": "m"},
    {"model": "m", "messages": []},
    {"model": "m", "messages": "hi"},
    {"model": "m", "messages": [{"role": "user"}]},
    {"model": "m", "messages": [{"role": "user", "content": None}]},
    {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]},
    {"model": "m", "messages": [{"role": "tool", "content": "42"}]},
    {"model": "m", "messages": [{"role": ["user"], "content": "hi"}]},
    {"model": "m", "messages": [{"role": "robot", "content": "hi"}]},
    {"model": "m", "messages": [{"role": "user", "content": "hi", "name": "bob"}]},
    {"model": "m", "messages": [{"role": "user", "content": "x" * (MAX_TEXT_CHARS + 1)}]},
    {"model": "m", "messages": HI * 1001},
    ["not", "an", "object"],
]


def drf(body):
    serializer = _new_serializer(ChatCompletionSerializer, body)
    return serializer.validated_data if serializer.is_valid() else None


@pytest.mark.parametrize("body", PLAIN)
def test_plain_requests_skip_drf_and_get_its_exact_data(body):
    fast = _plain_chat(body)
    assert fast is not None
    expected = drf(body)
    assert expected is not None
    assert fast == expected
    assert {type(value) for value in fast.values()} == {type(value) for value in expected.values()}


@pytest.mark.parametrize("body", UNUSUAL)
def test_anything_unusual_is_left_to_the_serializer(body):
    assert _plain_chat(body) is None
    expected = drf(body)
    if expected is None:
        with pytest.raises(ApiError):
            validated(ChatCompletionSerializer, body)
    else:
        assert validated(ChatCompletionSerializer, body) == expected
