"""The Chinese (Simplified) interface: complete catalogues, pages and e-mails in the visitor's
language, a language switcher, and APIs that answer in English whatever the client asks for."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.test import override_settings
from django.urls import reverse

from accounts import services
from tests.conftest import PASSWORD
from tests.i18n_catalogue import (
    DOMAINS,
    catalogue_path,
    english_fragments,
    english_words,
    ensure_compiled,
    read_catalogue,
    untranslated,
)

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-Hans"}
HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module", autouse=True)
def _compiled_catalogues():
    ensure_compiled()


class VisibleText(HTMLParser):
    """What a reader meets on a page: text and the attributes read out or shown (labels, hints,
    confirmations), without scripts, styles and example code."""

    SKIPPED = {"script", "style", "pre", "code"}
    SHOWN_ATTRIBUTES = {"aria-label", "placeholder", "alt", "title", "data-confirm"}

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIPPED:
            self.skipping += 1
        self.parts.extend(value for name, value in attrs if name in self.SHOWN_ATTRIBUTES and value)

    def handle_endtag(self, tag):
        if tag in self.SKIPPED and self.skipping:
            self.skipping -= 1

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)

    @classmethod
    def of(cls, html: str) -> str:
        parser = cls()
        parser.feed(html)
        return "\n".join(parser.parts)


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_catalogue_entry_is_translated_and_none_is_fuzzy(domain):
    header = catalogue_path(domain).read_text(encoding="utf-8").split("\n\n", 1)[0]
    assert "#, fuzzy" not in header and '"Language: zh_Hans\\n"' in header  # msgfmt skips a fuzzy header
    entries = read_catalogue(domain)
    assert len(entries) > (150 if domain == "django" else 25)
    fuzzy = [entry.msgid for entry in entries if "fuzzy" in entry.flags]
    empty = [entry.msgid for entry in entries if not entry.msgstr or not all(entry.msgstr)]
    assert not fuzzy, f"fuzzy entries in {domain}.po: {fuzzy}"
    assert not empty, f"untranslated entries in {domain}.po: {empty}"
    # Chinese, not a copy of the English (names such as "LLM OS Portal" aside).
    copied = [entry.msgid for entry in entries if entry.msgstr[0] == entry.msgid and HAN.search(entry.msgid) is None]
    assert len(copied) <= 3, copied


@pytest.mark.parametrize("domain", DOMAINS)
def test_catalogues_pass_msgfmts_checks(domain):
    msgfmt = shutil.which("msgfmt")
    assert msgfmt, "GNU gettext's msgfmt is missing: `make gettext` installs it"
    result = subprocess.run(
        [msgfmt, "--check", "--statistics", "-o", os.devnull, str(catalogue_path(domain))],
        capture_output=True,
        text=True,
        env={**os.environ, "LC_ALL": "C"},
    )
    assert result.returncode == 0, result.stderr
    assert "fuzzy" not in result.stderr and "untranslated" not in result.stderr, result.stderr


def test_catalogues_hold_exactly_the_strings_of_the_sources(tmp_path):
    """`make messages` on a copy of the sources changes no entry: nothing wrapped for translation is
    missing from the catalogues, and nothing in them is gone from the sources. Fails after new
    strings are added until `make messages` has run (and they are translated: see above)."""
    root = Path(settings.BASE_DIR)
    copy = tmp_path / "src"
    skipped = shutil.ignore_patterns(
        ".*", "node_modules", "staticfiles", "var", "tests", "bench", "deploy", "docs", "vendor", "__pycache__", "*.mo"
    )
    shutil.copytree(root, copy, ignore=skipped)
    ignore = ["--ignore", "static/vendor", "--ignore", "staticfiles", "--ignore", "tests"]
    for domain in DOMAINS:
        command = [
            "manage.py",
            "makemessages",
            "--locale",
            "zh_Hans",
            "--domain",
            domain,
            "--no-wrap",
            "--no-obsolete",
            *ignore,
        ]
        result = subprocess.run(
            [sys.executable, *command],
            cwd=copy,
            capture_output=True,
            text=True,
            env={**os.environ, "DEBUG": "true", "DJANGO_SETTINGS_MODULE": "llmos_portal.settings"},
        )
        assert result.returncode == 0, result.stderr
        refreshed = copy / "locale" / "zh_Hans" / "LC_MESSAGES" / f"{domain}.po"

        def keys(entries):
            return {(entry.msgctxt, entry.msgid) for entry in entries}

        current, sources = keys(read_catalogue(domain)), keys(read_catalogue(domain, refreshed))
        assert not sources - current, f"missing from {domain}.po (run `make messages`): {sources - current}"
        assert not current - sources, f"gone from the sources, still in {domain}.po: {current - sources}"


@pytest.mark.parametrize("domain", DOMAINS)
def test_translations_keep_every_placeholder_of_the_english(domain):
    placeholder = re.compile(r"%\(\w+\)[sdr]|%[sdr]|\{\{ ?\w+ ?\}\}|\{\w+\}")
    for entry in read_catalogue(domain):
        expected = sorted(placeholder.findall(entry.msgid_plural or entry.msgid))
        for msgstr in entry.msgstr:
            assert sorted(placeholder.findall(msgstr)) == expected, (entry.msgid, msgstr)


def _pages_of_a_signed_in_user(client, user):
    services.api_key_create(user=user, name="scripts", expires_at=None, allowed_models=[], allowed_ips=[])
    client.force_login(user)
    return [
        reverse("console"),
        reverse("keys"),
        reverse("usage"),
        reverse("batches"),
        reverse("playground"),
        reverse("two-factor"),
        reverse("password_change"),
        reverse("password_change_done"),
    ]


ANONYMOUS_PAGES = ["home", "signup", "login", "password_reset", "password_reset_done", "password_reset_complete"]


@pytest.mark.parametrize("name", ANONYMOUS_PAGES)
def test_public_pages_are_in_chinese_for_a_chinese_browser(client, db, name):
    response = client.get(reverse(name), **ZH)
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="zh-hans">' in html and response["Content-Language"] == "zh-hans"
    visible = VisibleText.of(html)
    assert HAN.search(visible)
    assert untranslated(visible) == []
    assert english_words(visible) == []  # nor English that was never wrapped for translation


def test_signed_in_pages_are_in_chinese_for_a_chinese_browser(client, owner):
    fragments = english_fragments()
    for path in _pages_of_a_signed_in_user(client, owner):
        response = client.get(path, **ZH)
        assert response.status_code == 200, path
        visible = VisibleText.of(response.content.decode())
        assert untranslated(visible, fragments) == [], path
        user_data = (owner.email, owner.plan.name, "scripts")  # the e-mail, the plan and key names
        assert english_words(visible, user_data=user_data) == [], path


def test_operator_overview_is_in_chinese(client, operator):
    client.force_login(operator)
    response = client.get(reverse("operator-usage"), **ZH)
    assert response.status_code == 200
    assert "用量总览" in response.content.decode()
    visible = VisibleText.of(response.content.decode())
    assert untranslated(visible) == []
    assert english_words(visible) == []


def test_the_same_pages_in_english_are_caught_by_the_check(client, owner):
    """The check above is not trivially true: the English pages are full of catalogue strings."""
    fragments = english_fragments()
    for path in _pages_of_a_signed_in_user(client, owner):
        visible = VisibleText.of(client.get(path, HTTP_ACCEPT_LANGUAGE="en").content.decode())
        assert len(untranslated(visible, fragments)) >= 5, path
        assert len(english_words(visible, user_data=(owner.email, owner.plan.name, "scripts"))) >= 10, path
        assert not HAN.search(visible.replace("简体中文", "")), path  # the switcher names Chinese in Chinese


def test_form_errors_and_messages_are_in_chinese(client, owner):
    response = client.post(reverse("signup"), {"email": owner.email, "password1": "x", "password2": "y"}, **ZH)
    html = response.content.decode()
    assert "该电子邮箱已注册账户。" in html and "两次输入的密码不一致。" in html
    client.force_login(owner)
    api_key, _ = services.api_key_create(user=owner, name="old", expires_at=None, allowed_models=[], allowed_ips=[])
    response = client.post(reverse("key-revoke", args=[api_key.pk]), follow=True, **ZH)
    assert "密钥“old”已吊销" in response.content.decode()
    response = client.get(reverse("usage"), {"start": "2026-02-10", "end": "2026-02-01"}, **ZH)
    assert "开始日期不能晚于结束日期。" in response.content.decode()


@pytest.mark.parametrize(
    ("accept_language", "language"),
    [
        ("zh", "zh-hans"),
        ("zh-CN", "zh-hans"),
        ("zh-Hans-CN,zh;q=0.9,en;q=0.8", "zh-hans"),
        ("en-GB", "en"),
        ("fr", "en"),
    ],
)
def test_browser_languages_map_to_the_interface_languages(client, db, accept_language, language):
    page = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE=accept_language).content.decode()
    assert f'<html lang="{language}">' in page


def test_the_switcher_chooses_the_language_over_the_browsers(client, db):
    page = client.get(reverse("login"), **ZH).content.decode()
    assert f'action="{reverse("set_language")}"' in page and 'name="language"' in page
    response = client.post(reverse("set_language"), {"language": "en", "next": reverse("login")}, **ZH)
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    page = client.get(reverse("login"), **ZH).content.decode()
    assert '<html lang="en">' in page and "Forgot your password?" in page

    client.post(reverse("set_language"), {"language": "zh-hans", "next": reverse("login")})
    page = client.get(reverse("login")).content.decode()  # no Accept-Language at all: the cookie decides
    assert '<html lang="zh-hans">' in page and "忘记密码？" in page


def test_the_switcher_needs_the_csrf_token(db):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(reverse("set_language"), {"language": "zh-hans"})
    assert response.status_code == 403


def test_the_javascript_catalogue_serves_the_playground_strings_in_chinese(client, db):
    response = client.get(reverse("javascript-catalog"), **ZH)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/javascript")
    body = response.content.decode()
    assert f'"Connected.": {json.dumps("已连接。")}' in body  # JSON, non-ASCII escaped
    page = client.get(reverse("login"), **ZH).content.decode()
    # A classic external script before the modules: allowed by script-src 'self', no inline code.
    assert page.index(f'<script src="{reverse("javascript-catalog")}"></script>') < page.index('type="module"')


@override_settings(ACCOUNT_EMAIL_VERIFICATION=True)
def test_the_verification_email_is_in_the_language_of_the_signup(client, db):
    client.post(reverse("signup"), {"email": "li@example.com", "password1": PASSWORD, "password2": PASSWORD}, **ZH)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject == "确认您在 LLM OS Portal 的电子邮箱"
    assert "欢迎！请确认您的邮箱地址以激活账户" in message.body and "/verify/" in message.body
    client.post(reverse("signup"), {"email": "lee@example.com", "password1": PASSWORD, "password2": PASSWORD})
    assert mail.outbox[1].subject == "Confirm your e-mail for LLM OS Portal"


def test_the_password_reset_email_is_in_the_language_of_the_request(client, owner):
    client.post(reverse("password_reset"), {"email": owner.email}, **ZH)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject == "重置您的 LLM OS Portal 密码"
    assert "有人请求重置 LLM OS Portal 账户 owner@example.com 的密码" in message.body
    assert re.search(r"http://testserver/password/reset/\S+/", message.body)
    assert "&#x27;" not in message.body and "If it wasn't you" not in message.body


def test_v1_errors_stay_in_english_for_a_chinese_client(client, owner_key):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {owner_key}"}
    body = '{"model": "SmolLM2-135M-Instruct"}'  # no messages: a validation error (DRF's words)
    english = client.post("/v1/chat/completions", body, content_type="application/json", **headers)
    chinese = client.post("/v1/chat/completions", body, content_type="application/json", **headers, **ZH)
    assert chinese.status_code == english.status_code == 400
    assert chinese.json() == english.json()
    assert not HAN.search(chinese.content.decode("unicode_escape"))
    assert "Content-Language" not in chinese

    missing_key = client.get("/v1/models", **ZH)
    assert missing_key.status_code == 401 and not HAN.search(missing_key.content.decode("unicode_escape"))
    unknown = client.get("/v1/nothing-here", **headers, **ZH)
    assert unknown.status_code == 404 and not HAN.search(unknown.content.decode("unicode_escape"))


def test_the_portal_api_stays_in_english_for_a_chinese_client(client, db):
    response = client.get("/api/keys/", **ZH)
    assert response.status_code in (401, 403)
    assert response.json()["detail"] == "Authentication credentials were not provided."


def test_urls_have_no_language_prefix(client, db):
    assert reverse("login") == "/login/" and reverse("playground") == "/playground/"
    assert client.get("/zh-hans/login/", **ZH).status_code == 404


def test_the_chinese_readme_mirrors_the_english_one():
    english = (Path(settings.BASE_DIR) / "README.md").read_text(encoding="utf-8")
    chinese = (Path(settings.BASE_DIR) / "README.zh-Hans.md").read_text(encoding="utf-8")
    assert "[简体中文](README.zh-Hans.md)" in english and "[English](README.md)" in chinese

    def shape(text: str) -> dict:
        return {
            "headings": len(re.findall(r"^#+ ", text, re.MULTILINE)),
            "table rows": len(re.findall(r"^\|", text, re.MULTILINE)),
            "code blocks": len(re.findall(r"```\w*\n.*?```", text, re.DOTALL)),
            "env variables": sorted(set(re.findall(r"`([A-Z][A-Z0-9_]{3,})`", text))),
            "paths": sorted(set(re.findall(r"`(/[\w/{}.-]*)`", text))),
            "links": sorted(set(re.findall(r"\]\(((?!#)[^)]+)\)", text)) - {"README.md", "README.zh-Hans.md"}),
        }

    assert shape(chinese) == shape(english)
    python_example = re.search(r"```python\n.*?```", english, re.DOTALL)
    assert python_example and python_example.group(0) in chinese  # the code is the same code


@override_settings(DEBUG=False)
@pytest.mark.parametrize(("accept_language", "heading"), [("zh-Hans", "找不到页面"), ("en", "Page not found")])
def test_the_not_found_page_is_in_the_visitors_language(client, db, accept_language, heading):
    response = client.get("/no-such-page/", HTTP_ACCEPT_LANGUAGE=accept_language)
    assert response.status_code == 404
    assert f"<h1>{heading}</h1>" in response.content.decode()
