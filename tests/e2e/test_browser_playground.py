"""A person in headless Chromium logs in, watches a reply from the real embedded model stream into
the playground over the websocket, then stops a long generation."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

EMAIL = "playground-browser@example.com"
PASSWORD = "a-long-playground-passphrase-1"

# Records the length of the newest reply on every DOM change, as the page renders tokens.
OBSERVE_REPLY = """() => {
  window.__replyLengths = [];
  const transcript = document.getElementById("pg-transcript");
  new MutationObserver(() => {
    const bodies = transcript.querySelectorAll(".pg-assistant .pg-body");
    const last = bodies[bodies.length - 1];
    if (last) window.__replyLengths.push(last.textContent.length);
  }).observe(transcript, {subtree: true, childList: true, characterData: true});
}"""


def test_reply_streams_in_and_stop_halts_a_long_generation(portal_server, page):
    base = portal_server.url
    portal_server.create_user_and_key(EMAIL, PASSWORD)

    page.goto(f"{base}/login/")
    page.get_by_label("E-mail").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/console/")
    page.get_by_role("link", name="Playground").click()
    page.wait_for_url(f"{base}/playground/")
    expect(page.locator("#pg-status")).to_have_text("Connected.", timeout=15_000)

    # A short reply: it grows over several updates, then shows its token count and speed.
    page.evaluate(OBSERVE_REPLY)
    page.get_by_label("Temperature").fill("0")
    page.get_by_label("Max tokens").fill("40")
    page.get_by_label("Message").fill("Tell me three facts about the sun.")
    page.get_by_label("Message").press("Enter")
    reply = page.locator(".pg-assistant").last
    expect(reply.locator(".pg-meta")).to_have_text(re.compile(r"^\d+ tokens? · [\d.]+ tok/s$"), timeout=90_000)
    lengths = page.evaluate("window.__replyLengths")
    growth = sorted({length for length in lengths if length > 0})
    assert len(growth) >= 3, lengths  # seen at 3+ different lengths: streamed, not dumped at the end
    assert lengths == sorted(lengths)  # only ever grew
    first_text = reply.locator(".pg-body").inner_text()
    assert first_text.strip()
    expect(page.locator("#pg-status")).to_have_text(re.compile(r"^Done"))
    assert re.search(r"/playground/c/\d+/$", page.url)  # saved; the address reopens it

    # A long reply, stopped part-way: the page says so and the text stops growing.
    page.get_by_label("Temperature").fill("0.8")
    page.get_by_label("Max tokens").fill("400")
    page.get_by_label("Message").fill("Write a very long story about a dragon who learns to bake bread.")
    page.get_by_role("button", name="Send").click()
    long_reply = page.locator(".pg-assistant").last.locator(".pg-body")
    page.wait_for_function(
        "() => { const b = document.querySelectorAll('.pg-assistant .pg-body'); "
        "return b.length === 2 && b[1].textContent.length > 30; }",
        timeout=90_000,
    )
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#pg-status")).to_have_text("Stopped.", timeout=15_000)
    meta = page.locator(".pg-assistant").last.locator(".pg-meta")
    expect(meta).to_contain_text("Stopped")
    stopped_text = long_reply.inner_text()
    time.sleep(1.5)
    assert long_reply.inner_text() == stopped_text
    expect(page.get_by_role("button", name="Stop")).to_be_disabled()
    expect(page.get_by_role("button", name="Send")).to_be_enabled()

    # The server stopped too: the generation was billed as cancelled, well short of max tokens.
    rows = portal_server.usage_rows(EMAIL, expected=2)
    playground = [row for row in rows if row["endpoint"] == "playground"]
    assert len(playground) == 2
    assert playground[0]["error_code"] == "" and playground[0]["status_code"] == 200
    assert playground[1]["error_code"] == "cancelled" and playground[1]["completion_tokens"] < 400
    tokens_shown = int(re.search(r"(\d+) tokens?", meta.inner_text()).group(1))
    assert tokens_shown == playground[1]["completion_tokens"]
