"""Builders for OpenAI wire objects (responses and stream chunks). Pure functions."""

from __future__ import annotations

import base64
import json
import struct
import time
import uuid


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _message(text: str, extras: dict) -> dict:
    message: dict = {"role": "assistant", "content": text, "refusal": None}
    if extras.get("tool_calls"):
        message["tool_calls"] = extras["tool_calls"]
        if not text:
            message["content"] = None  # as OpenAI answers a message that only calls tools
    return message


def chat_completion(
    *,
    id: str,
    created: int,
    model: str,
    choices: list[tuple[str, str]],
    prompt_tokens: int,
    completion_tokens: int,
    extras: list[dict] | None = None,
) -> dict:
    """`extras[i]` holds choice i's tool_calls and logprobs, as the upstream returned them."""
    extras = extras or [{} for _ in choices]
    return {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": index,
                "message": _message(text, extra),
                "logprobs": extra.get("logprobs"),
                "finish_reason": finish_reason,
            }
            for index, ((text, finish_reason), extra) in enumerate(zip(choices, extras, strict=True))
        ],
        "usage": usage(prompt_tokens, completion_tokens),
    }


def text_completion(
    *,
    id: str,
    created: int,
    model: str,
    choices: list[tuple[str, str]],
    prompt_tokens: int,
    completion_tokens: int,
    extras: list[dict] | None = None,
) -> dict:
    extras = extras or [{} for _ in choices]
    return {
        "id": id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {"index": index, "text": text, "logprobs": extra.get("logprobs"), "finish_reason": finish_reason}
            for index, ((text, finish_reason), extra) in enumerate(zip(choices, extras, strict=True))
        ],
        "usage": usage(prompt_tokens, completion_tokens),
    }


def chat_chunk(
    *,
    id: str,
    created: int,
    model: str,
    index: int,
    delta: dict,
    finish_reason: str | None,
    with_usage_field: bool,
    logprobs: dict | None = None,
) -> dict:
    chunk = {
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}],
    }
    if with_usage_field:
        chunk["usage"] = None
    return chunk


def completion_chunk(
    *,
    id: str,
    created: int,
    model: str,
    index: int,
    text: str,
    finish_reason: str | None,
    with_usage_field: bool,
    logprobs: dict | None = None,
) -> dict:
    chunk = {
        "id": id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish_reason}],
    }
    if with_usage_field:
        chunk["usage"] = None
    return chunk


def usage_chunk(*, id: str, created: int, model: str, object: str, prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "id": id,
        "object": object,
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [],
        "usage": usage(prompt_tokens, completion_tokens),
    }


def sse(payload: dict | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


SSE_DONE = sse("[DONE]")
SSE_KEEPALIVE = b": keep-alive\n\n"  # an SSE comment: clients and proxies see traffic, parsers skip it


def embedding_list(*, model: str, vectors: list[list[float]], prompt_tokens: int, encoding_format: str) -> dict:
    def encode(vector: list[float]):
        if encoding_format == "base64":
            return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        return vector

    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": encode(vector)} for index, vector in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def model_object(*, name: str, created: int, owned_by: str, context_length: int) -> dict:
    return {"id": name, "object": "model", "created": created, "owned_by": owned_by, "context_length": context_length}
