"""Splitting a document's text into overlapping chunks (plain Python, no Django).

Text is cut at the best boundary available: a paragraph, else a sentence, else a word, so a chunk
holds whole sentences where it can. Each chunk repeats the last `overlap` characters (whole
sentences) of the one before, so a fact that spans a boundary is whole in one of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n+|\n(?=\s*(?:[-*#>]|\d+[.)])\s)")


@dataclass(frozen=True)
class TextChunk:
    index: int
    text: str
    start: int
    end: int


def _pieces(text: str, max_chars: int) -> list[tuple[int, int]]:
    """(start, end) spans of sentences/paragraphs, none longer than max_chars (long ones cut at words)."""
    spans: list[tuple[int, int]] = []
    position = 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((position, match.start()))
        position = match.end()
    spans.append((position, len(text)))
    pieces: list[tuple[int, int]] = []
    for start, end in spans:
        while end - start > max_chars:
            cut = text.rfind(" ", start, start + max_chars)
            cut = cut if cut > start else start + max_chars
            pieces.append((start, cut))
            start = cut
            while start < end and text[start].isspace():
                start += 1
        if text[start:end].strip():
            pieces.append((start, end))
    return pieces


def chunk_text(text: str, *, max_chars: int = 800, overlap: int = 160) -> list[TextChunk]:
    """Chunks of at most about `max_chars` characters, each starting with up to `overlap`
    characters of whole sentences from the end of the previous chunk."""
    if overlap >= max_chars:
        raise ValueError("overlap must be smaller than max_chars")
    pieces = _pieces(text, max_chars)
    chunks: list[TextChunk] = []
    current: list[tuple[int, int]] = []

    def emit() -> None:
        start, end = current[0][0], current[-1][1]
        chunks.append(TextChunk(index=len(chunks), text=text[start:end].strip(), start=start, end=end))

    for piece in pieces:
        if current and piece[1] - current[0][0] > max_chars:
            emit()
            carried: list[tuple[int, int]] = []
            for earlier in reversed(current):
                if current[-1][1] - earlier[0] > overlap or piece[1] - earlier[0] > max_chars:
                    break
                carried.insert(0, earlier)
            current = carried
        current.append(piece)
    if current:
        emit()
    return chunks
