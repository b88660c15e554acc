"""The playground socket speaks the page's language: its own messages follow the switcher's cookie,
else the browser's Accept-Language (English by default)."""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings

from llmos_portal.asgi import application
from tests.i18n_catalogue import ensure_compiled
from tests.playground.conftest import ORIGIN

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _compiled_catalogues():
    ensure_compiled()


def socket(*, cookies: dict[str, str] | None = None, accept_language: str | None = None) -> WebsocketCommunicator:
    headers = [(b"host", b"localhost"), (b"origin", ORIGIN.encode())]
    if cookies:
        headers.append((b"cookie", "; ".join(f"{name}={value}" for name, value in cookies.items()).encode()))
    if accept_language:
        headers.append((b"accept-language", accept_language.encode()))
    return WebsocketCommunicator(application, "/ws/playground/", headers=headers)


@pytest.mark.parametrize(
    ("accept_language", "message"),
    [(None, "Log in to use the playground."), ("zh-CN,zh;q=0.9", "请登录后使用演练场。")],
)
async def test_an_anonymous_socket_is_told_to_log_in_in_the_browsers_language(accept_language, message):
    ws = socket(accept_language=accept_language)
    assert (await ws.connect())[0]
    event = await ws.receive_json_from()
    assert event["code"] == "not_authenticated" and event["message"] == message
    await ws.disconnect()


async def test_the_switchers_cookie_wins_over_accept_language(alice_cookie):
    cookies = {settings.SESSION_COOKIE_NAME: alice_cookie, settings.LANGUAGE_COOKIE_NAME: "zh-hans"}
    ws = socket(cookies=cookies, accept_language="en-US")
    assert (await ws.connect())[0]
    assert (await ws.receive_json_from())["type"] == "ready"
    await ws.send_to(text_data="x" * (settings.PLAYGROUND_MAX_MESSAGE_BYTES + 1))
    event = await ws.receive_json_from()
    assert event["code"] == "message_too_large"
    assert event["message"] == f"消息不能超过 {settings.PLAYGROUND_MAX_MESSAGE_BYTES} 字节。"
    await ws.disconnect()


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_shared_api_errors_get_a_sentence_in_the_pages_language_and_keep_the_english_detail(language):
    from django.utils import translation

    from inference.errors import from_limit_exceeded
    from playground.generation import PAGE_MESSAGES, error_event
    from usage.metering import LimitExceeded

    english = "Rate limit reached for requests: 20 per minute. Retry after 12 s."
    refusal = LimitExceeded(english, code="rate_limit_exceeded", headers={"Retry-After": "12"})
    with translation.override(language):
        event = error_event(from_limit_exceeded(refusal))
    assert event["code"] == "rate_limit_exceeded" and event["retry_after"] == 12
    if language == "en":
        assert event["message"] == english and "detail" not in event
    else:
        assert event["message"] == "已超出您套餐的速率限制，请稍候再试。" and event["detail"] == english
    with translation.override("en"):
        english_sentences = [str(text) for text in PAGE_MESSAGES.values()]
    with translation.override("zh-hans"):  # every shared code has its sentence in the catalogue
        chinese_sentences = [str(text) for text in PAGE_MESSAGES.values()]
    assert all(zh != en for zh, en in zip(chinese_sentences, english_sentences, strict=True))
