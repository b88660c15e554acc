"""Reads the translation catalogues (locale/zh_Hans/LC_MESSAGES/*.po) for the i18n tests, and finds
English interface strings left in a page's visible text."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.utils import translation

LOCALE = "zh_Hans"
DOMAINS = ("django", "djangojs")
# Words that stay as they are in the Chinese interface too: names of things, not sentences.
KEPT_IN_CHINESE = {"LLM OS Portal", "OpenAI", "API", "JWT", "CSV", "UTC", "Python", "SDK", "curl", "Top p"}
_PLACEHOLDER = re.compile(r"%\(\w+\)[sdr]|%[sdr]|\{\{[^}]*\}\}|<[^>]*>")
_MIN_LETTERS = 4


@dataclass
class Entry:
    msgid: str
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    line: int = 0


def catalogue_path(domain: str) -> Path:
    return Path(settings.BASE_DIR) / "locale" / LOCALE / "LC_MESSAGES" / f"{domain}.po"


def ensure_compiled() -> None:
    """The .mo files are build outputs (`make compilemessages`, which `make test` runs first);
    compiled here too when missing or older than their .po, so a test file also runs on its own."""
    for domain in DOMAINS:
        po = catalogue_path(domain)
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            call_command("compilemessages", locale=[LOCALE], verbosity=0)
            translation.trans_real._translations = {}  # forget catalogues read before the compile
            return


def _unquote(text: str) -> str:
    return ast.literal_eval(text)  # a .po string literal is a valid Python one (same escapes)


def read_catalogue(domain: str, path: Path | None = None) -> list[Entry]:
    """Every entry of the catalogue but the header (msgid ""); obsolete (#~) ones are left out.
    Entries are separated by blank lines, as makemessages writes them."""
    entries: list[Entry] = []
    current = Entry(msgid="")
    key = ""
    path = path or catalogue_path(domain)
    for number, raw in enumerate([*path.read_text(encoding="utf-8").splitlines(), ""], start=1):
        line = raw.strip()
        if not line:
            if current.msgid:
                entries.append(current)
            current, key = Entry(msgid=""), ""
        elif line.startswith("#,"):
            current.flags |= {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#"):
            continue
        elif match := re.match(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?)\s+(\".*\")$", line):
            key, value = match.group(1), _unquote(match.group(2))
            if key.startswith("msgstr") and current.line == 0:
                raise AssertionError(f"{path}:{number}: a msgstr without its msgid")
            if key == "msgid":
                current.line = number
            if key.startswith("msgstr"):
                current.msgstr.append(value)
            else:
                setattr(current, key, value)
        elif line.startswith('"') and key:
            value = _unquote(line)
            if key.startswith("msgstr"):
                current.msgstr[-1] += value
            else:
                setattr(current, key, (getattr(current, key) or "") + value)
        else:
            raise AssertionError(f"{path}:{number}: cannot read {raw!r}")
    return entries


def english_fragments() -> set[str]:
    """The English text of every catalogue entry, cut at placeholders and markup into the pieces a
    page would show verbatim if the entry were not translated; pieces shorter than 4 letters and
    names kept in Chinese (KEPT_IN_CHINESE) are left out."""
    fragments: set[str] = set()
    for domain in DOMAINS:
        for entry in read_catalogue(domain):
            for source in filter(None, (entry.msgid, entry.msgid_plural)):
                for piece in _PLACEHOLDER.split(source):
                    for line in piece.splitlines():
                        text = " ".join(line.split()).strip(" .,:;·()“”")
                        if sum(ch.isalpha() for ch in text) >= _MIN_LETTERS and text not in KEPT_IN_CHINESE:
                            fragments.add(text)
    return fragments


def untranslated(visible_text: str, fragments: set[str] | None = None) -> list[str]:
    """The catalogue's English pieces that occur in `visible_text` as whole words (case-sensitive,
    so code such as `model=` or `messages=` in an example does not count as the label "Model")."""
    text = " ".join(visible_text.split())
    found = []
    for fragment in sorted(fragments if fragments is not None else english_fragments()):
        if re.search(rf"(?<![A-Za-z]){re.escape(fragment)}(?![A-Za-z])", text):
            found.append(fragment)
    return found


# English that belongs on a Chinese page: names (of the product, protocols, formats, tools and
# keys on the keyboard), units, and the switcher's "English" (each language is named in itself).
ALLOWED_ENGLISH_WORDS = frozenset(
    {
        "LLM",
        "OS",
        "Portal",
        "OpenAI",
        "API",
        "JWT",
        "CIDR",
        "IP",
        "UTC",
        "CSV",
        "ms",
        "p",
        "Top",
        "curl",
        "Python",
        "openai",
        "SDK",
        "Enter",
        "Shift",
        "English",
        "n",
        "QR",
    }
)
_NAMES_WITH_DIGITS = re.compile(r"\S*\d\S*")  # model names (SmolLM2-135M-Instruct), /v1 paths, p50
_API_KEY = re.compile(r"llmos_\w+")


def english_words(visible_text: str, *, user_data: tuple[str, ...] = ()) -> list[str]:
    """Every English word on a page that should be all Chinese, once names, units and what the user
    typed (`user_data`: e-mail, key names, plan names...) are set aside. Finds English that was never
    wrapped for translation too, which the catalogue check (`untranslated`) cannot."""
    text = visible_text
    for item in sorted(user_data, key=len, reverse=True):
        text = text.replace(item, " ")
    text = _NAMES_WITH_DIGITS.sub(" ", _API_KEY.sub(" ", text))
    return sorted({word for word in re.findall(r"[A-Za-z]+", text) if word not in ALLOWED_ENGLISH_WORDS})
