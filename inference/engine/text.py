"""Incremental detokenization and stop-string matching (pure Python, no torch)."""

from __future__ import annotations

import codecs
from collections.abc import Callable
from typing import Any, Protocol


class Detokenizer(Protocol):
    def push(self, token_id: int) -> str: ...

    def flush(self) -> str: ...


# Prompt tokens kept as left context so the first generated token decodes with correct spacing.
_CONTEXT_TOKENS = 6


class IncrementalDetokenizer:
    """Turns a growing list of token ids into text deltas.

    Decodes a small window [prefix_offset:] against [prefix_offset:read_offset] and emits the
    difference, holding back text that ends in an incomplete UTF-8 character (U+FFFD). This is
    correct for byte-level BPE and for sentencepiece's leading-space handling.
    """

    def __init__(self, tokenizer: Any, prompt_ids: list[int]):
        self._tok = tokenizer
        self._ids: list[int] = list(prompt_ids[-_CONTEXT_TOKENS:])
        self._prefix = 0
        self._read = len(self._ids)

    def _decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def push(self, token_id: int) -> str:
        self._ids.append(token_id)
        prefix_text = self._decode(self._ids[self._prefix : self._read])
        new_text = self._decode(self._ids[self._prefix :])
        if len(new_text) > len(prefix_text) and not new_text.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self._ids)
            return new_text[len(prefix_text) :]
        return ""

    def flush(self) -> str:
        """Whatever is still held back, minus a trailing incomplete character."""
        prefix_text = self._decode(self._ids[self._prefix : self._read])
        new_text = self._decode(self._ids[self._prefix :])
        self._prefix = self._read = len(self._ids)
        return new_text[len(prefix_text) :].rstrip("\ufffd")


class PieceDetokenizer:
    """Incremental detokenization from per-token byte pieces (llama.cpp vocabularies).

    Generated text is the concatenation of the tokens' pieces (control tokens render as b"");
    an incremental UTF-8 decoder holds back a character split across tokens.
    """

    def __init__(self, piece: Callable[[int], bytes]):
        self._piece = piece
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token_id: int) -> str:
        return self._utf8.decode(self._piece(token_id))

    def flush(self) -> str:
        """Whatever is still held back, minus a trailing incomplete character."""
        return self._utf8.decode(b"", final=True).rstrip("\ufffd")


class StopMatcher:
    """Trims output at the first stop string; holds back text that could start one."""

    def __init__(self, stops: tuple[str, ...] | list[str]):
        self._stops = [s for s in stops if s]
        self._pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Returns (text safe to emit, whether a stop string was hit)."""
        if not self._stops:
            return text, False
        buf = self._pending + text
        hits = [i for i in (buf.find(s) for s in self._stops) if i >= 0]
        if hits:
            self._pending = ""
            return buf[: min(hits)], True
        hold = self._held_suffix(buf)
        self._pending = buf[len(buf) - hold :] if hold else ""
        return buf[: len(buf) - hold], False

    def _held_suffix(self, buf: str) -> int:
        best = 0
        for stop in self._stops:
            for k in range(min(len(stop) - 1, len(buf)), best, -1):
                if buf.endswith(stop[:k]):
                    best = k
                    break
        return best

    def flush(self) -> str:
        text, self._pending = self._pending, ""
        return text
