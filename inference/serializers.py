"""Request validation for the OpenAI-compatible API and the native task endpoints.

Fields are strict about JSON types (a number is not a string, a string is not a number): real
clients send proper JSON, and coercing would hide their bugs.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

from rest_framework import serializers

from accounts.fields import StrictBooleanField, StrictCharField, StrictFloatField, StrictIntegerField
from inference.errors import invalid

MAX_STOP_SEQUENCES = 4
MAX_CHOICES = 4
MAX_EMBEDDING_INPUTS = 256
MAX_TEXT_CHARS = 100_000


class StopField(serializers.Field):
    """`stop`: a string or a list of up to 4 non-empty strings."""

    default_error_messages = {"invalid": "Must be a string or a list of up to 4 strings."}

    def to_internal_value(self, data) -> tuple[str, ...]:
        if isinstance(data, str):
            data = [data]
        if not isinstance(data, list) or len(data) > MAX_STOP_SEQUENCES:
            self.fail("invalid")
        if not all(isinstance(item, str) and item for item in data):
            self.fail("invalid")
        return tuple(data)

    def to_representation(self, value):
        return list(value)


class MessageContentField(serializers.Field):
    """A message's content: a string, or a list of text parts (images are not supported)."""

    default_error_messages = {
        "invalid": "Content must be a string or a list of {{'type': 'text', 'text': ...}} parts.",
        "unsupported": "Only text content is supported by this server.",
    }

    def to_internal_value(self, data) -> str:
        if isinstance(data, str):
            return data
        if not isinstance(data, list):
            self.fail("invalid")
        texts = []
        for part in data:
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                self.fail("invalid")
            if part["type"] != "text":
                self.fail("unsupported")
            if not isinstance(part.get("text"), str):
                self.fail("invalid")
            texts.append(part["text"])
        return "".join(texts)

    def to_representation(self, value):
        return value


FUNCTION_NAME = r"^[a-zA-Z0-9_-]{1,64}$"
MAX_TOOLS = 128
MAX_LOGIT_BIAS = 300


class ToolCallFunctionSerializer(serializers.Serializer):
    name = StrictCharField(max_length=64)
    arguments = StrictCharField(allow_blank=True, trim_whitespace=False, max_length=MAX_TEXT_CHARS)


class ToolCallSerializer(serializers.Serializer):
    """A tool call an assistant message made earlier in the conversation."""

    id = StrictCharField(max_length=200)
    type = serializers.ChoiceField(choices=["function"])
    function = ToolCallFunctionSerializer()


class MessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["system", "developer", "user", "assistant", "tool"])
    content = MessageContentField(allow_null=True, required=False)
    name = StrictCharField(required=False, max_length=64)
    tool_calls = ToolCallSerializer(many=True, required=False, allow_empty=False)
    tool_call_id = StrictCharField(required=False, max_length=200)

    def validate(self, attrs):
        if attrs.get("tool_calls") and attrs["role"] != "assistant":
            raise serializers.ValidationError({"tool_calls": "Only assistant messages have tool_calls."})
        if attrs["role"] == "tool" and not attrs.get("tool_call_id"):
            raise serializers.ValidationError({"tool_call_id": "A tool message needs the tool_call_id it answers."})
        if attrs.get("content") is None:
            if not attrs.get("tool_calls"):
                raise serializers.ValidationError({"content": "Message content may not be null."})
            attrs["content"] = None  # an assistant message that only called tools
        if attrs["role"] == "developer":
            attrs["role"] = "system"  # newer SDKs send "developer" for system instructions
        return attrs


def _function_name(value, where: str) -> str:
    if not isinstance(value, str) or not re.match(FUNCTION_NAME, value):
        raise serializers.ValidationError(f"{where}: function names have 1-64 letters, digits, '_' or '-'.")
    return value


class ToolsField(serializers.Field):
    """`tools`: [{"type": "function", "function": {"name", "description"?, "parameters"?, "strict"?}}]."""

    def to_internal_value(self, data) -> list[dict]:
        if not isinstance(data, list) or len(data) > MAX_TOOLS:
            raise serializers.ValidationError(f"tools must be a list of at most {MAX_TOOLS} tools.")
        for index, tool in enumerate(data):
            if (
                not isinstance(tool, dict)
                or tool.get("type") != "function"
                or not isinstance(tool.get("function"), dict)
            ):
                raise serializers.ValidationError(f"tools[{index}] is not {{'type': 'function', 'function': {{...}}}}.")
            function = tool["function"]
            _function_name(function.get("name"), f"tools[{index}].function.name")
            if "parameters" in function and not isinstance(function["parameters"], dict):
                raise serializers.ValidationError(f"tools[{index}].function.parameters must be a JSON Schema object.")
            if "description" in function and not isinstance(function["description"], str):
                raise serializers.ValidationError(f"tools[{index}].function.description must be a string.")
        return data

    def to_representation(self, value):
        return value


class ToolChoiceField(serializers.Field):
    """`tool_choice`: "none" | "auto" | "required" | {"type": "function", "function": {"name"}}."""

    def to_internal_value(self, data):
        if data in ("none", "auto", "required"):
            return data
        if (
            isinstance(data, dict)
            and data.get("type") == "function"
            and isinstance(data.get("function"), dict)
            and isinstance(data["function"].get("name"), str)
        ):
            _function_name(data["function"]["name"], "tool_choice.function.name")
            return data
        raise serializers.ValidationError(
            "tool_choice is 'none', 'auto', 'required' or {'type': 'function', 'function': {'name': ...}}."
        )

    def to_representation(self, value):
        return value


class ResponseFormatField(serializers.Field):
    """`response_format`: {"type": "text" | "json_object"} or {"type": "json_schema", "json_schema":
    {"name", "schema"?, "strict"?, "description"?}}."""

    def to_internal_value(self, data) -> dict:
        if not isinstance(data, dict) or data.get("type") not in ("text", "json_object", "json_schema"):
            raise serializers.ValidationError("response_format type must be 'text', 'json_object' or 'json_schema'.")
        if data["type"] == "json_schema":
            schema = data.get("json_schema")
            if not isinstance(schema, dict) or not isinstance(schema.get("name"), str):
                raise serializers.ValidationError("json_schema needs a 'name' (and usually a 'schema').")
            if "schema" in schema and not isinstance(schema["schema"], dict):
                raise serializers.ValidationError("json_schema.schema must be a JSON Schema object.")
            if "strict" in schema and not isinstance(schema["strict"], bool | type(None)):
                raise serializers.ValidationError("json_schema.strict must be a boolean.")
        return data

    def to_representation(self, value):
        return value


class LogitBiasField(serializers.Field):
    """`logit_bias`: {"token id": bias from -100 to 100}."""

    def to_internal_value(self, data) -> dict:
        if not isinstance(data, dict) or len(data) > MAX_LOGIT_BIAS:
            raise serializers.ValidationError(f"logit_bias maps at most {MAX_LOGIT_BIAS} token ids to a bias.")
        for token, bias in data.items():
            if not token.isdigit():
                raise serializers.ValidationError(f"{token!r} is not a token id.")
            if isinstance(bias, bool) or not isinstance(bias, int | float) or not -100 <= bias <= 100:
                raise serializers.ValidationError(f"The bias of token {token} must be a number from -100 to 100.")
        return data

    def to_representation(self, value):
        return value


class SamplingSerializer(serializers.Serializer):
    """Parameters shared by chat and text completions."""

    model = StrictCharField(max_length=200)
    max_tokens = StrictIntegerField(required=False, allow_null=True, min_value=1)
    temperature = StrictFloatField(required=False, allow_null=True, min_value=0.0, max_value=2.0)
    top_p = StrictFloatField(required=False, allow_null=True, min_value=0.0, max_value=1.0)
    n = StrictIntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_CHOICES)
    stream = StrictBooleanField(required=False, allow_null=True)
    stream_options = serializers.DictField(required=False, allow_null=True)
    stop = StopField(required=False, allow_null=True)
    seed = StrictIntegerField(required=False, allow_null=True, min_value=-(2**63), max_value=2**63 - 1)
    presence_penalty = StrictFloatField(required=False, allow_null=True, min_value=-2.0, max_value=2.0)
    frequency_penalty = StrictFloatField(required=False, allow_null=True, min_value=-2.0, max_value=2.0)
    user = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=256)
    logit_bias = LogitBiasField(required=False, allow_null=True)

    def validate_stream_options(self, value):
        if value is None:
            return value
        include_usage = value.get("include_usage", False)
        if not isinstance(include_usage, bool):
            raise serializers.ValidationError("include_usage must be a boolean.")
        return {"include_usage": include_usage}

    def validate(self, attrs):
        if attrs.get("stream_options") and not attrs.get("stream"):
            raise serializers.ValidationError({"stream_options": "stream_options is only allowed when stream is true."})
        return attrs


class ChatCompletionSerializer(SamplingSerializer):
    messages = MessageSerializer(many=True, allow_empty=False, max_length=1000)  # type: ignore[call-arg]  # ListSerializer's
    max_completion_tokens = StrictIntegerField(required=False, allow_null=True, min_value=1)
    response_format = ResponseFormatField(required=False, allow_null=True)
    tools = ToolsField(required=False, allow_null=True)
    tool_choice = ToolChoiceField(required=False, allow_null=True)
    parallel_tool_calls = StrictBooleanField(required=False, allow_null=True)
    logprobs = StrictBooleanField(required=False, allow_null=True)  # a boolean here; 0 is not false
    top_logprobs = StrictIntegerField(required=False, allow_null=True, min_value=0, max_value=20)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if attrs.get("max_completion_tokens") is not None:
            attrs["max_tokens"] = attrs["max_completion_tokens"]
        if attrs.get("top_logprobs") is not None and not attrs.get("logprobs"):
            raise serializers.ValidationError({"top_logprobs": "top_logprobs needs logprobs: true."})
        if attrs.get("tool_choice") not in (None, "none") and not attrs.get("tools"):
            raise serializers.ValidationError({"tool_choice": "tool_choice needs tools."})
        if attrs.get("parallel_tool_calls") is not None and not attrs.get("tools"):
            raise serializers.ValidationError(
                {"parallel_tool_calls": "parallel_tool_calls is only allowed with tools."}
            )
        total_chars = sum(len(message["content"] or "") for message in attrs["messages"])
        if total_chars > MAX_TEXT_CHARS:
            raise serializers.ValidationError({"messages": f"Messages exceed {MAX_TEXT_CHARS} characters."})
        return attrs


class CompletionSerializer(SamplingSerializer):
    prompt = serializers.JSONField()
    logprobs = StrictIntegerField(required=False, allow_null=True, min_value=0, max_value=5)
    echo = StrictBooleanField(required=False, allow_null=True)
    suffix = StrictCharField(required=False, allow_null=True, allow_blank=True)

    def validate_prompt(self, value) -> str:
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
            value = value[0]
        if not isinstance(value, str):
            raise serializers.ValidationError("prompt must be a string (batched and token prompts are not supported).")
        if not value:
            raise serializers.ValidationError("prompt must not be empty.")
        if len(value) > MAX_TEXT_CHARS:
            raise serializers.ValidationError(f"prompt exceeds {MAX_TEXT_CHARS} characters.")
        return value

    def validate_echo(self, value):
        if value:
            raise serializers.ValidationError("echo is not supported by this server.")
        return value

    def validate_suffix(self, value):
        if value:
            raise serializers.ValidationError("suffix is not supported by this server.")
        return value


class EmbeddingSerializer(serializers.Serializer):
    model = StrictCharField(max_length=200)
    input = serializers.JSONField()
    encoding_format = serializers.ChoiceField(choices=["float", "base64"], required=False, default="float")
    dimensions = StrictIntegerField(required=False, allow_null=True, min_value=1)
    user = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=256)

    def validate_input(self, value) -> list[str]:
        texts = [value] if isinstance(value, str) else value
        if not isinstance(texts, list) or not texts:
            raise serializers.ValidationError("input must be a non-empty string or a non-empty list of strings.")
        if not all(isinstance(text, str) for text in texts):
            raise serializers.ValidationError("input must contain strings (token arrays are not supported).")
        if any(text == "" for text in texts):
            raise serializers.ValidationError("input must not contain empty strings.")
        if len(texts) > MAX_EMBEDDING_INPUTS:
            raise serializers.ValidationError(f"input may hold at most {MAX_EMBEDDING_INPUTS} items.")
        if sum(len(text) for text in texts) > MAX_TEXT_CHARS:
            raise serializers.ValidationError(f"input exceeds {MAX_TEXT_CHARS} characters.")
        return texts


# --- native task endpoints -------------------------------------------------------------------


class GenerateSerializer(serializers.Serializer):
    prompt = StrictCharField(max_length=MAX_TEXT_CHARS)
    model = StrictCharField(required=False, max_length=200)
    max_length = StrictIntegerField(required=False, default=128, min_value=1, max_value=4096)
    temperature = StrictFloatField(required=False, default=0.7, min_value=0.0, max_value=2.0)
    raw = StrictBooleanField(required=False, default=False, help_text="Skip the chat template: plain continuation.")


class GenerateResponseSerializer(serializers.Serializer):
    text = serializers.CharField()
    model = serializers.CharField()
    finish_reason = serializers.CharField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()


class AskSerializer(serializers.Serializer):
    question = StrictCharField(max_length=10_000)
    context = StrictCharField(required=False, allow_blank=True, max_length=MAX_TEXT_CHARS)  # type: ignore[assignment]
    knowledge_base = StrictCharField(
        required=False,
        max_length=40,
        help_text="A knowledge base (vector store) id, `vs_...`: the answer comes from its most relevant passages "
        "(and `context`, if given), with citations.",
    )
    model = StrictCharField(required=False, max_length=200)
    max_length = StrictIntegerField(required=False, default=128, min_value=1, max_value=2048)


class CitationSerializer(serializers.Serializer):
    document = serializers.CharField(help_text="The document's file name")
    file_id = serializers.CharField()
    chunk_id = serializers.IntegerField()
    chunk_index = serializers.IntegerField(help_text="The passage's position in its document, from 0")
    score = serializers.FloatField(help_text="Cosine similarity between the question and the passage")
    text = serializers.CharField()


class AskResponseSerializer(serializers.Serializer):
    answer = serializers.CharField()
    model = serializers.CharField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    found = serializers.BooleanField(
        required=False,
        help_text="With `knowledge_base`: whether relevant passages were found (else no answer is made up)",
    )
    citations = CitationSerializer(many=True, required=False, help_text="With `knowledge_base`: the passages used")


class ClassifySerializer(serializers.Serializer):
    text = StrictCharField(max_length=10_000)
    labels = serializers.ListField(child=StrictCharField(max_length=200), min_length=2, max_length=50)
    model = StrictCharField(required=False, max_length=200)
    hypothesis_template = StrictCharField(
        required=False,
        default="This text is about {}.",
        max_length=300,
        help_text="A sentence with `{}` where the label goes; no other braces.",
    )
    multi_label = StrictBooleanField(required=False, default=False)

    def validate_labels(self, value):
        if len(set(value)) != len(value):
            raise serializers.ValidationError("Labels must be distinct.")
        return value

    def validate_hypothesis_template(self, value):
        if "{}" not in value:
            raise serializers.ValidationError("The template must contain {} where the label goes.")
        if "{" in value.replace("{}", "") or "}" in value.replace("{}", ""):
            raise serializers.ValidationError(
                "The template may contain only {} (where the label goes), no other braces."
            )
        return value


class LabelScoreSerializer(serializers.Serializer):
    label = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.label
    score = serializers.FloatField()


class ClassifyResponseSerializer(serializers.Serializer):
    label = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.label
    scores = LabelScoreSerializer(many=True)
    model = serializers.CharField()
    prompt_tokens = serializers.IntegerField()


# --- validation entry point ----------------------------------------------------------------


def _first_error(detail, path: str = "") -> tuple[str, str]:
    """The first (param path, message) in a DRF error tree, e.g. ('messages[0].content', '...')."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key == "non_field_errors":
                return _first_error(value, path)
            if isinstance(key, int) or str(key).isdigit():  # list items come keyed by index
                return _first_error(value, f"{path}[{key}]")
            return _first_error(value, f"{path}.{key}" if path else str(key))
    if isinstance(detail, list):
        for index, value in enumerate(detail):
            if value in ({}, [], None):
                continue
            if isinstance(value, dict | list) and not isinstance(value, str):
                return _first_error(value, f"{path}[{index}]")
            return path, str(value)
    return path, str(detail)


_BOUND_FIELDS: dict[type, dict] = {}


def _new_serializer(serializer_class, data: dict) -> serializers.Serializer:
    """A serializer for `data` that shares one set of bound fields per class.

    DRF deep-copies (re-instantiates) every declared field for each serializer instance: for a chat
    request that was most of a millisecond, on every request. Validation never changes a field
    (errors and values live in local variables, `validate_<field>` methods run on the serializer
    itself), so the fields of one prototype instance are reused: `fields` is a cached_property,
    filled here from the prototype's."""
    serializer = serializer_class(data=data)
    fields = _BOUND_FIELDS.get(serializer_class)
    if fields is None:
        fields = _BOUND_FIELDS.setdefault(serializer_class, serializer_class().fields)
    serializer.__dict__["fields"] = fields
    return serializer


# The plain chat request most clients send, validated without DRF (whose field machinery was the
# largest single cost of a gateway request). Anything else -- another parameter, a null, a value
# at or past a limit, content parts, tool messages -- goes through ChatCompletionSerializer, which
# also words every error. tests/inference/test_serializers.py checks both give the same data.
_PLAIN_CHAT_NUMBERS = (
    "max_tokens",
    "max_completion_tokens",
    "n",
    "seed",
    "temperature",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
)
_PLAIN_CHAT_KEYS = frozenset({"model", "messages", "stream", "user", "stop", *_PLAIN_CHAT_NUMBERS})
_PLAIN_ROLES = frozenset({"system", "developer", "user", "assistant"})


@functools.cache
def _plain_chat_limits() -> dict:
    """The serializer's own limits, read once from its fields (never written twice)."""
    fields: Any = ChatCompletionSerializer().fields  # typed as plain Fields; these have limits
    numbers = {
        name: (isinstance(fields[name], serializers.IntegerField), fields[name].min_value, fields[name].max_value)
        for name in _PLAIN_CHAT_NUMBERS
    }
    return {
        "numbers": numbers,
        "model": fields["model"].max_length,
        "user": fields["user"].max_length,
        "messages": fields["messages"].max_length,
    }


def _plain_text(value, max_length: int, *, allow_blank: bool) -> bool:
    """A value a StrictCharField keeps as it is (no trimming, nothing it would refuse)."""
    return (
        isinstance(value, str)
        and len(value) <= max_length
        and (allow_blank or value != "")
        and value.isascii()
        and value.isprintable()
        and value == value.strip()
    )


def _plain_chat(data: dict) -> dict | None:
    """ChatCompletionSerializer's validated data for a plain request, or None to let it decide."""
    if not isinstance(data, dict) or not data.keys() <= _PLAIN_CHAT_KEYS:
        return None
    limits = _plain_chat_limits()
    out: dict = {}
    if not _plain_text(data.get("model"), limits["model"], allow_blank=False):
        return None
    out["model"] = data["model"]
    for name, (integer, low, high) in limits["numbers"].items():
        if name not in data:
            continue
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
            return None
        if not integer and not math.isfinite(value):
            return None
        if value < low or value > (high if high is not None else 2**53):  # beyond 2**53: let DRF judge
            return None
        out[name] = value if integer else float(value)
    if "stream" in data:
        if not isinstance(data["stream"], bool):
            return None
        out["stream"] = data["stream"]
    if "stop" in data:
        stop = data["stop"]
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or len(stops) > MAX_STOP_SEQUENCES:
            return None
        if not all(isinstance(item, str) and item for item in stops):
            return None
        out["stop"] = tuple(stops)
    if "user" in data:
        if not _plain_text(data["user"], limits["user"], allow_blank=True):
            return None
        out["user"] = data["user"]
    messages = data.get("messages")
    if not isinstance(messages, list) or not 0 < len(messages) <= limits["messages"]:
        return None
    plain = []
    chars = 0
    for message in messages:
        if not isinstance(message, dict) or message.keys() != {"role", "content"}:
            return None
        role, content = message["role"], message["content"]
        if not isinstance(role, str) or role not in _PLAIN_ROLES or not isinstance(content, str):
            return None
        chars += len(content)
        plain.append({"role": "system" if role == "developer" else role, "content": content})
    if chars > MAX_TEXT_CHARS:
        return None
    out["messages"] = plain
    if "max_completion_tokens" in out:
        out["max_tokens"] = out["max_completion_tokens"]
    return out


def validated(serializer_class, data: dict) -> dict:
    """Validated data, or an ApiError (400) naming the first bad parameter, e.g. messages[0].content."""
    if serializer_class is ChatCompletionSerializer:
        plain = _plain_chat(data)
        if plain is not None:
            return plain
    serializer = _new_serializer(serializer_class, data)
    if not serializer.is_valid():
        param, message = _first_error(serializer.errors)
        raise invalid(f"Invalid value for '{param}': {message}" if param else message, param=param or None)
    return serializer.validated_data
