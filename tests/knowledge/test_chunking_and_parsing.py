"""Documents in, chunks out: text from text, Markdown, HTML and PDF; chunks of whole sentences
that overlap, so a fact across a boundary is whole in one chunk."""

from __future__ import annotations

import pytest

from knowledge.chunking import chunk_text
from knowledge.parsing import DocumentError, extract_text


def make_pdf(lines: list[str]) -> bytes:
    """A minimal one-page PDF with the lines as text (Helvetica), xref offsets computed."""
    text_ops = " ".join(f"({line}) Tj 0 -16 Td" for line in lines)
    stream = f"BT /F1 12 Tf 72 720 Td {text_ops} ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def test_chunks_overlap_and_keep_whole_sentences():
    sentences = [f"Sentence number {i} says something about topic {i}." for i in range(40)]
    text = " ".join(sentences)
    chunks = chunk_text(text, max_chars=300, overlap=80)
    assert len(chunks) > 3
    for chunk in chunks:
        assert len(chunk.text) <= 300
        assert chunk.text.endswith(".")  # cut between sentences
        assert text[chunk.start : chunk.end].strip() == chunk.text
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert after.start < before.end  # the next chunk repeats the end of the one before
    covered = " ".join(chunk.text for chunk in chunks)
    assert all(sentence in covered for sentence in sentences)


def test_a_sentence_longer_than_a_chunk_is_cut_at_words():
    text = " ".join(["word"] * 500)
    chunks = chunk_text(text, max_chars=200, overlap=0)
    assert all(len(chunk.text) <= 200 for chunk in chunks)
    assert sum(chunk.text.count("word") for chunk in chunks) == 500


def test_html_text_skips_scripts_and_keeps_paragraphs():
    markup = b"<html><head><title>T</title><style>p{}</style></head><body><script>alert(1)</script>" \
        b"<h1>Refunds</h1><p>Refunds take 5 days.</p><p>Call &amp; ask.</p></body></html>"  # fmt: skip
    text = extract_text(filename="page.html", data=markup)
    assert "alert" not in text and "p{}" not in text
    assert "Refunds take 5 days." in text and "Call & ask." in text


def test_markdown_and_text_are_read_as_utf8():
    assert extract_text(filename="notes.md", data="# Café\n\nOpen at 9.".encode()) == "# Café\n\nOpen at 9."


def test_pdf_text_is_extracted():
    text = extract_text(filename="policy.pdf", data=make_pdf(["The warranty lasts two years.", "Batteries excluded."]))
    assert "The warranty lasts two years." in text and "Batteries excluded." in text


@pytest.mark.parametrize(
    ("filename", "data", "reason"),
    [
        ("broken.pdf", b"%PDF-1.4 garbage", "PDF cannot be read"),
        ("image.txt", b"\xff\xd8\xff\xe0" + bytes(range(256)), "Unsupported file"),
        ("empty.md", b"   \n\n ", "no text"),
    ],
)
def test_unreadable_documents_fail_with_a_reason(filename, data, reason):
    with pytest.raises(DocumentError, match=reason):
        extract_text(filename=filename, data=data)
