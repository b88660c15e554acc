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
