"""Text out of an uploaded document: plain text, Markdown, HTML or PDF (pypdf). Plain Python."""

from __future__ import annotations

import html
import io
import re
from html.parser import HTMLParser

TEXT_TYPES = {".txt", ".text", ".md", ".markdown", ".rst", ".csv", ".json", ".log"}
HTML_TYPES = {".html", ".htm", ".xhtml"}
SUPPORTED = sorted(TEXT_TYPES | HTML_TYPES | {".pdf"})


class DocumentError(Exception):
    """A document whose text cannot be read; the message says why (shown to its owner)."""


def _extension(filename: str) -> str:
    dot = filename.rfind(".")
    return filename[dot:].lower() if dot >= 0 else ""


def is_supported(filename: str, data: bytes) -> bool:
    return data.startswith(b"%PDF-") or _extension(filename) in TEXT_TYPES | HTML_TYPES | {".pdf", ""}


class _HtmlText(HTMLParser):
    SKIP = {"script", "style", "head", "template", "noscript", "svg"}
    BLOCK = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "section",
             "article", "pre", "blockquote", "hr", "dt", "dd", "title"}  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag) -> None:
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1
        elif tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    parser = _HtmlText()
    parser.feed(markup)
    parser.close()
    return html.unescape("".join(parser.parts))


def pdf_to_text(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise DocumentError("The PDF is encrypted.")
        return "\n\n".join((page.extract_text() or "") for page in reader.pages)
    except DocumentError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise DocumentError(f"The PDF cannot be read ({exc.__class__.__name__}).") from exc


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = re.sub(r"[ \t\f\v]+", " ", text)
    text = re.sub(r" ?\n ?", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def extract_text(*, filename: str, data: bytes) -> str:
    """The document's text, whitespace tidied; DocumentError when it has none or cannot be read."""
    extension = _extension(filename)
    if data.startswith(b"%PDF-") or extension == ".pdf":
        text = pdf_to_text(data)
    else:
        try:
            decoded = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DocumentError(
                f"Unsupported file: use UTF-8 text, Markdown, HTML or PDF ({', '.join(SUPPORTED)})."
            ) from exc
        looks_html = extension in HTML_TYPES or (
            not extension and decoded.lstrip()[:15].lower().startswith(("<!doctype html", "<html"))
        )
        text = html_to_text(decoded) if looks_html else decoded
    text = _normalise(text)
    if not text:
        raise DocumentError("The document has no text.")
    return text
