"""The OpenAPI description of the /v1 API (plain async views, so drf-spectacular cannot see them).

Written by hand to match inference.serializers (requests) and inference.openai_format (responses),
and merged into /api/schema/ by `llmos_portal.openapi.postprocess`. Constraints the views enforce
are stated here too (lengths, ranges, `echo`/`suffix` unsupported), so a client
generated from the schema sends what the server accepts. Two rules the format cannot state are in
the descriptions: `stream_options` needs `stream: true`, and `dimensions` must be the model's own.
The optional OpenAI parameters (tools, response_format, logprobs, logit_bias) are described with the
values every model accepts; their full OpenAI form is accepted by the models whose upstream supports
them (their capabilities, state the schema cannot describe: otherwise a 400 naming the parameter).
"""

from __future__ import annotations

from typing import Any

from inference.serializers import MAX_CHOICES, MAX_EMBEDDING_INPUTS, MAX_STOP_SEQUENCES, MAX_TEXT_CHARS

TAG = "openai"
EXAMPLE_CHAT_MODEL = "SmolLM2-135M-Instruct"
EXAMPLE_EMBEDDING_MODEL = "all-MiniLM-L6-v2"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict) -> dict:
    return {**schema, "nullable": True}


_NUMBER = {"type": "number"}
# Strict DRF CharFields refuse NUL characters, and blanks once whitespace is trimmed.
_NO_NUL = "^[^\\x00]*$"
_NOT_BLANK = "^[^\\x00]*[^\\x00\\s][^\\x00]*$"
_COUNT = {"type": "integer", "minimum": 0}
_FINISH = {
    "type": "string",
    "description": "In-process models: stop or length. Upstream models: the upstream's own (tool_calls, ...).",
    "example": "stop",
}
_UPSTREAM_ONLY = (
    " Every model accepts the values described here; OpenAI's full form is accepted by models whose"
    " upstream supports it (their capabilities): elsewhere a 400 `unsupported_parameter` names it."
)

SCHEMAS: dict[str, Any] = {
    "OpenAIError": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "param", "code"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string", "example": "invalid_request_error"},
                    "param": {"type": "string", "nullable": True},
                    "code": {"type": "string", "nullable": True},
                },
            }
        },
    },
    "OpenAIModel": {
        "type": "object",
        "required": ["id", "object", "created", "owned_by", "context_length"],
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "enum": ["model"]},
            "created": {"type": "integer"},
            "owned_by": {"type": "string"},
            "context_length": {"type": "integer", "minimum": 1, "description": "Tokens of prompt and answer."},
        },
    },
    "ToolCall": {
        "type": "object",
        "required": ["id", "type", "function"],
        "properties": {
            "id": {"type": "string", "minLength": 1, "maxLength": 200},
            "type": {"type": "string", "enum": ["function"]},
            "function": {
                "type": "object",
                "required": ["name", "arguments"],
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 64},
                    "arguments": {"type": "string", "description": "JSON text, as the model wrote it."},
                },
            },
        },
    },
    "OpenAIModelList": {
        "type": "object",
        "required": ["object", "data"],
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "data": {"type": "array", "items": _ref("OpenAIModel")},
        },
    },
    "ChatMessage": {
        "type": "object",
        "required": ["role", "content"],
        "description": "Models with the `tools` capability also take OpenAI's tool fields: `tool_calls` (an "
        "assistant message, whose content may then be null) and `tool_call_id` (a `tool` message).",
        "properties": {
            "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool"]},
            "content": {
                "description": "A string, or a list of text parts (images are not supported).",
                "oneOf": [
                    {"type": "string"},
                    {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["type", "text"],
                            "properties": {
                                "type": {"type": "string", "enum": ["text"]},
                                "text": {"type": "string"},
                            },
                        },
                    },
                ],
            },
            "name": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": _NOT_BLANK},
        },
    },
    "StreamOptions": {
        "type": "object",
        "description": "Only with `stream: true`.",
        "properties": {"include_usage": {"type": "boolean"}},
    },
    "StreamEvent": {
        "type": "object",
        "description": "One server-sent event, as `data: <payload>` and a blank line.",
        "required": ["data"],
        "properties": {
            "data": {
                "type": "string",
                "description": (
                    "A JSON chunk (`chat.completion.chunk` or `text_completion`; with `include_usage` a last "
                    "chunk with `choices: []` and `usage`), an OpenAI error object if the model fails "
                    "mid-stream, then the literal `[DONE]`. Comment lines (`: keep-alive`) come while "
                    "a token is slow (every SSE_KEEPALIVE_SECONDS)."
                ),
            },
            "event": {"type": "string"},
        },
    },
    "Usage": {
        "type": "object",
        "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
        "properties": {"prompt_tokens": _COUNT, "completion_tokens": _COUNT, "total_tokens": _COUNT},
    },
    "ChatCompletion": {
        "type": "object",
        "required": ["id", "object", "created", "model", "choices", "usage"],
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "enum": ["chat.completion"]},
            "created": {"type": "integer"},
            "model": {"type": "string"},
            "system_fingerprint": {"type": "string", "nullable": True},
            "choices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "message", "finish_reason"],
                    "properties": {
                        "index": _COUNT,
                        "message": {
                            "type": "object",
                            "required": ["role", "content"],
                            "properties": {
                                "role": {"type": "string", "enum": ["assistant"]},
                                "content": {"type": "string", "nullable": True},
                                "refusal": {"type": "string", "nullable": True},
                                "tool_calls": {"type": "array", "items": _ref("ToolCall")},
                            },
                        },
                        "logprobs": {"type": "object", "nullable": True},
                        "finish_reason": _FINISH,
                    },
                },
            },
            "usage": _ref("Usage"),
        },
    },
    "TextCompletion": {
        "type": "object",
        "required": ["id", "object", "created", "model", "choices", "usage"],
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "enum": ["text_completion"]},
            "created": {"type": "integer"},
            "model": {"type": "string"},
            "system_fingerprint": {"type": "string", "nullable": True},
            "choices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "text", "finish_reason"],
                    "properties": {
                        "index": _COUNT,
                        "text": {"type": "string"},
                        "logprobs": {"type": "object", "nullable": True},
                        "finish_reason": _FINISH,
                    },
                },
            },
            "usage": _ref("Usage"),
        },
    },
    "EmbeddingList": {
        "type": "object",
        "required": ["object", "data", "model", "usage"],
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["object", "index", "embedding"],
                    "properties": {
                        "object": {"type": "string", "enum": ["embedding"]},
                        "index": _COUNT,
                        "embedding": {
                            "description": "Floats, or base64 of little-endian float32 with encoding_format=base64.",
                            "oneOf": [{"type": "array", "items": _NUMBER}, {"type": "string"}],
                        },
                    },
                },
            },
            "model": {"type": "string"},
            "usage": {
                "type": "object",
                "required": ["prompt_tokens", "total_tokens"],
                "properties": {"prompt_tokens": _COUNT, "total_tokens": _COUNT},
            },
        },
    },
}

_SAMPLING: dict[str, Any] = {
    "max_tokens": _nullable({"type": "integer", "minimum": 1, "description": "Capped by your plan."}),
    "temperature": _nullable({"type": "number", "minimum": 0, "maximum": 2}),
    "top_p": _nullable({"type": "number", "minimum": 0, "maximum": 1}),
    "n": _nullable({"type": "integer", "minimum": 1, "maximum": MAX_CHOICES}),
    "stream": _nullable({"type": "boolean", "description": "Answer with server-sent events."}),
    "stream_options": _nullable(_ref("StreamOptions")),
    "stop": _nullable(
        {
            "oneOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": MAX_STOP_SEQUENCES},
            ]
        }
    ),
    "seed": _nullable({"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}),
    "presence_penalty": _nullable({"type": "number", "minimum": -2, "maximum": 2}),
    "frequency_penalty": _nullable({"type": "number", "minimum": -2, "maximum": 2}),
    "user": _nullable(
        {"type": "string", "maxLength": 256, "pattern": _NO_NUL, "description": "Your end user: kept on usage rows."}
    ),
    "logit_bias": _nullable(
        {
            "type": "object",
            "maxProperties": 0,
            "description": "Token id (digits) -> bias from -100 to 100." + _UPSTREAM_ONLY,
        }
    ),
}
_MODEL = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": _NOT_BLANK}

SCHEMAS["ChatCompletionRequest"] = {
    "type": "object",
    "required": ["model", "messages"],
    "properties": {
        "model": {**_MODEL, "example": EXAMPLE_CHAT_MODEL},
        "messages": {
            "type": "array",
            "items": _ref("ChatMessage"),
            "minItems": 1,
            "maxItems": 1000,
            "description": f"At most {MAX_TEXT_CHARS} characters of content in all.",
        },
        **_SAMPLING,
        "max_completion_tokens": _nullable({"type": "integer", "minimum": 1}),
        "response_format": _nullable(
            {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"type": "string", "enum": ["text"]}},
                "description": "json_object and json_schema (OpenAI's form)." + _UPSTREAM_ONLY,
            }
        ),
        "tools": _nullable(
            {
                "type": "array",
                "maxItems": 0,
                "items": {},
                "description": "Function tools (with tool_choice and parallel_tool_calls)." + _UPSTREAM_ONLY,
            }
        ),
        "tool_choice": _nullable({"type": "string", "enum": ["none"], "description": "Needs tools." + _UPSTREAM_ONLY}),
        "logprobs": _nullable(
            {"type": "boolean", "enum": [False, None], "description": "true (and top_logprobs)." + _UPSTREAM_ONLY}
        ),
    },
}
SCHEMAS["CompletionRequest"] = {
    "type": "object",
    "required": ["model", "prompt"],
    "properties": {
        "model": {**_MODEL, "example": EXAMPLE_CHAT_MODEL},
        "prompt": {
            "description": "A string (a list of exactly one string is accepted too).",
            "oneOf": [
                {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_CHARS},
                {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_CHARS},
                    "minItems": 1,
                    "maxItems": 1,
                },
            ],
        },
        **_SAMPLING,
        "echo": _nullable({"type": "boolean", "enum": [False, None], "description": "Not supported."}),
        "suffix": _nullable({"type": "string", "maxLength": 0, "description": "Not supported."}),
    },
}
SCHEMAS["EmbeddingRequest"] = {
    "type": "object",
    "required": ["model", "input"],
    "properties": {
        "model": {**_MODEL, "example": EXAMPLE_EMBEDDING_MODEL},
        "input": {
            "description": f"At most {MAX_TEXT_CHARS} characters in all.",
            "oneOf": [
                {"type": "string", "minLength": 1},
                {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1},
                    "minItems": 1,
                    "maxItems": MAX_EMBEDDING_INPUTS,
                },
            ],
        },
        "encoding_format": {"type": "string", "enum": ["float", "base64"], "default": "float"},
        "dimensions": _nullable(
            {"type": "integer", "minimum": 1, "description": "Must be the model's own size (384 for MiniLM)."}
        ),
        "user": _nullable({"type": "string", "maxLength": 256, "pattern": _NO_NUL}),
    },
}


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref("OpenAIError")}}}


def _errors(*statuses: int) -> dict:
    descriptions = {
        400: "Invalid request (the `param` names the field)",
        401: "Missing or invalid API key",
        403: "The key may not use this model, or comes from a disallowed address",
        404: "Unknown model",
        405: "Method not allowed",
        429: "Rate limit or token budget exceeded (see Retry-After)",
        500: "Unexpected server error",
        502: "The upstream model server failed",
        503: "Overloaded, model not loaded, or the database unreachable (see Retry-After)",
        504: "The upstream model server timed out",
    }
    return {str(status): _error(descriptions[status]) for status in statuses}


_GENERATION_ERRORS = _errors(400, 401, 403, 404, 405, 429, 500, 502, 503, 504)
_SECURITY: list[dict[str, list[str]]] = [{"ApiKeyAuth": []}]


def _json(schema_name: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema_name)}}}


def _generation(operation_id: str, schema_name: str, summary: str, request: str) -> dict:
    return {
        "operationId": operation_id,
        "summary": summary,
        "tags": [TAG],
        "security": _SECURITY,
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(request)}}},
        "responses": {
            "200": {
                "description": "The answer; with `stream: true`, server-sent events ending in `data: [DONE]`.",
                "content": {
                    "application/json": {"schema": _ref(schema_name)},
                    "text/event-stream": {"schema": _ref("StreamEvent")},
                },
            },
            **_GENERATION_ERRORS,
        },
    }


PATHS: dict[str, Any] = {
    "/v1/models": {
        "get": {
            "operationId": "v1_models_list",
            "summary": "Models this key may use",
            "tags": [TAG],
            "security": _SECURITY,
            "responses": {"200": _json("OpenAIModelList", "The models"), **_errors(401, 403, 405, 429, 500, 503)},
        }
    },
    "/v1/models/{model_id}": {
        "get": {
            "operationId": "v1_models_retrieve",
            "summary": "One model",
            "tags": [TAG],
            "security": _SECURITY,
            "parameters": [
                {
                    "name": "model_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "example": EXAMPLE_CHAT_MODEL},
                }
            ],
            "responses": {"200": _json("OpenAIModel", "The model"), **_errors(401, 403, 404, 405, 429, 500, 503)},
        }
    },
    "/v1/chat/completions": {
        "post": _generation(
            "v1_chat_completions_create",
            "ChatCompletion",
            "Chat completion (OpenAI-compatible)",
            "ChatCompletionRequest",
        )
    },
    "/v1/completions": {
        "post": _generation(
            "v1_completions_create", "TextCompletion", "Text completion (OpenAI-compatible)", "CompletionRequest"
        )
    },
    "/v1/embeddings": {
        "post": {
            "operationId": "v1_embeddings_create",
            "summary": "Embeddings (OpenAI-compatible)",
            "tags": [TAG],
            "security": _SECURITY,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("EmbeddingRequest")}},
            },
            "responses": {
                "200": _json("EmbeddingList", "One vector per input"),
                **_errors(400, 401, 403, 404, 405, 429, 500, 502, 503, 504),
            },
        }
    },
}


# Rules of the native task serializers that drf-spectacular cannot read from their validators.
NATIVE_FIELD_PATCHES: dict[str, dict[str, dict]] = {
    "ClassifyRequest": {
        "labels": {"uniqueItems": True},
        "hypothesis_template": {"pattern": r"^[^{}\x00]*\{\}[^{}\x00]*(\{\}[^{}\x00]*)*$"},
    },
}
