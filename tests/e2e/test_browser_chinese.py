"""A person whose browser asks for Chinese (locale zh-CN) signs up, creates a key and chats in the
playground with the real embedded model: every page, and the text the playground's JavaScript
writes, is in Chinese: no English string of the translation catalogues is left on them."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.i18n_catalogue import english_fragments, english_words, ensure_compiled, untranslated

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

EMAIL = "zh-browser@example.com"
PASSWORD = "a-long-chinese-browser-passphrase-1"

# Every text node and every attribute a reader meets (labels, hints, confirmations), shown or not
# (closed <details>, the hidden tab panel), and the page title. Left out: scripts, example code, and
# what the user or the model wrote (the transcript's bodies).
PAGE_TEXT = """() => {
  const skip = "script, style, pre, code, .pg-body";
  const attributes = ["aria-label", "placeholder", "alt", "title", "data-confirm"];
  const parts = [document.title];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.parentElement.closest(skip)) parts.push(node.textContent);
  }
  for (const element of document.body.querySelectorAll("*")) {
    if (element.closest(skip)) continue;
    for (const name of attributes) if (element.hasAttribute(name)) parts.push(element.getAttribute(name));
  }
  return parts.join("\\n");
}"""


USER_DATA = (EMAIL, "Free")  # the account's e-mail and its plan's name (the default plan, "Free")


def assert_all_chinese(page, fragments: set[str]) -> None:
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    text = page.evaluate(PAGE_TEXT)
    assert re.search(r"[\u4e00-\u9fff]", text)
    assert untranslated(text, fragments) == [], page.url  # no catalogue string left in English
    assert english_words(text, user_data=USER_DATA) == [], page.url  # nor any string never wrapped


@pytest.fixture(scope="module", autouse=True)
def _compiled_catalogues():
    ensure_compiled()  # before the server starts (it reads the .mo files once)


def test_signup_key_and_playground_are_all_in_chinese(portal_server, chromium):
    base = portal_server.url
    fragments = english_fragments()
    assert len(fragments) > 200  # the check has plenty to look for
    context = chromium.new_context(locale="zh-CN")  # Accept-Language: zh-CN, which Django serves as zh-hans
    page = context.new_page()
    csp_errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and csp_errors.append(message.text))

    page.goto(f"{base}/signup/")
    assert_all_chinese(page, fragments)
    page.get_by_label("电子邮箱").fill(EMAIL)
    page.get_by_label("密码", exact=True).fill(PASSWORD)
    page.get_by_label("确认密码").fill(PASSWORD)
    page.get_by_role("button", name="注册").click()
    page.wait_for_url(f"{base}/console/")
    expect(page.locator(".messages")).to_contain_text("欢迎！创建一个 API 密钥即可开始调用模型。")
    assert_all_chinese(page, fragments)

    page.get_by_role("link", name="管理密钥").click()
    page.get_by_label("名称").fill("浏览器密钥")
    page.get_by_role("button", name="创建密钥").click()
    expect(page.locator("#new-key")).to_have_text(re.compile(r"^llmos_"))
    expect(page.locator("tr", has_text="浏览器密钥")).to_contain_text("有效")
    assert_all_chinese(page, fragments)

    page.get_by_role("link", name="演练场").click()
    page.wait_for_url(f"{base}/playground/")
    expect(page.locator("#pg-status")).to_have_text("已连接。", timeout=15_000)
    assert_all_chinese(page, fragments)

    # A reply from the real model: the status, the turn headings and the token count are the
    # JavaScript's strings, from the Chinese JavaScript catalogue.
    page.get_by_label("温度").fill("0")
    page.get_by_label("最大令牌数").fill("24")
    page.get_by_label("消息").fill("请用一句话介绍太阳。")  # the conversation's title: user data, in Chinese too
    page.get_by_role("button", name="发送").click()
    reply = page.locator(".pg-assistant").last
    expect(reply.locator(".pg-meta")).to_have_text(re.compile(r"^\d+ 个令牌 · [\d.]+ 令牌/秒$"), timeout=90_000)
    expect(page.locator("#pg-status")).to_have_text(re.compile(r"^完成"))
    expect(page.locator(".pg-user .pg-who").last).to_have_text("你")
    expect(reply.locator(".pg-who")).to_have_text("模型")
    page.get_by_role("tab", name="补全").click()
    expect(page.locator("#pg-input-label")).to_have_text("提示词（原始文本，不套用对话模板）")
    assert_all_chinese(page, fragments)

    # The switcher: English again, and the same check finds the English strings (it is not blind).
    page.get_by_label("语言").select_option("en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#pg-status")).to_have_text("Connected.", timeout=15_000)
    english_page = page.evaluate(PAGE_TEXT)
    assert len(untranslated(english_page, fragments)) >= 20
    assert len(english_words(english_page, user_data=USER_DATA)) >= 50
    assert not [text for text in csp_errors if "Content Security Policy" in text]
    context.close()
