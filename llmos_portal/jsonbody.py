"""Strict JSON for request bodies and websocket frames: every way `json.loads` can accept or choke
on hostile input ends as one `JsonBodyError` (a 400 in each API's own shape), never a 500.

- Deep nesting (`[[[[...`) makes the parser raise RecursionError, not ValueError.
- `"\\ud800"` parses into a str with a lone surrogate, which cannot be encoded as UTF-8: it would
  fail later, in the tokenizer, a cache key or a database write.

Plain Python (the engine's and every app's views use it); the DRF parser is in `JSONParser` below.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser as DrfJSONParser

# A \uD800-\uDFFF escape: only then can a parsed string hold a surrogate (raw UTF-8 cannot).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class JsonBodyError(ValueError):
    def __init__(self, message: str, *, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param


def _is_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def lone_surrogate_path(value: Any, path: str = "") -> str | None:
    """The path (`messages[0].content`) of the first string or key holding a lone surrogate."""
    if isinstance(value, str):
        return None if _is_encodable(value) else path
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if not _is_encodable(key):
                return path or "(key)"
            found = lone_surrogate_path(item, child)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = lone_surrogate_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def check_text(data: Any, raw: bytes | str) -> None:
    """Raise JsonBodyError if `data` (parsed from `raw`) holds a lone surrogate."""
    raw_bytes = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if not _SURROGATE_ESCAPE.search(raw_bytes):
        return  # the common case: a cheap scan of the raw body, no walk
    path = lone_surrogate_path(data)
    if path is not None:
        raise JsonBodyError(
            f"Invalid value for '{path}': strings must be valid Unicode (a lone surrogate escape was sent).",
            param=path or None,
        )


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(raw: bytes | str) -> Any:
    """`json.loads` (without NaN and Infinity, which JSON lacks), raising JsonBodyError for anything
    it rejects or that is not valid text."""
    try:
        data = json.loads(raw, parse_constant=_no_constants)
    except RecursionError:
        raise JsonBodyError("The JSON body is nested too deeply.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise JsonBodyError(f"We could not parse the JSON body of your request ({exc}).") from None
    check_text(data, raw)
    return data


class JSONParser(DrfJSONParser):
    """DRF's JSON parser with the same guarantees: a 400 ({"detail"}) instead of a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        if not raw:
            raise ParseError("The request body is empty; send a JSON object.")
        try:
            return loads(raw)
        except JsonBodyError as exc:
            raise ParseError(exc.message) from None
