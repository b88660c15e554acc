"""The front end in a real headless Chromium, under a strict Content-Security-Policy.

The pages carry no inline scripts or inline event handlers, so a policy without 'unsafe-inline'
breaks nothing: the confirmations before revoking a key or deleting a conversation still ask
(dismiss keeps the item, accept removes it), and the pages load their ES modules with no console
error (a module that fails to import or to run shows up there). The test adds the policy to the
page responses itself, so it checks the templates whatever the server's settings send.
"""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PASSWORD = "a-long-frontend-passphrase-1"
STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def with_strict_csp(page) -> None:
    """Serve every page (GET documents) with STRICT_CSP added; everything else passes through.

    A fulfilled response has no address of its own, so Chromium's local-network checks would block
    the playground's socket to 127.0.0.1 from it; the test grants that permission.
    """
    page.context.grant_permissions(["local-network-access"])

    def handle(route) -> None:
        request = route.request
        if request.resource_type != "document" or request.method != "GET":
            route.continue_()
            return
        response = route.fetch(max_redirects=0)
        route.fulfill(response=response, headers={**response.headers, "content-security-policy": STRICT_CSP})

    page.route("**/*", handle)


def collect_errors(page) -> list[str]:
    errors: list[str] = []

    def console(message) -> None:
        url = message.location.get("url", "")
        if message.type == "error" and not url.endswith("/favicon.ico"):  # the portal has no favicon
            errors.append(f"{message.text} ({url})")

    page.on("console", console)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    return errors


def log_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/login/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/console/")


def answer_dialogs(page, *, accept: bool) -> list[str]:
    """Answer the next confirm() dialog; the returned list receives its message."""
    asked: list[str] = []

    def handle(dialog) -> None:
        asked.append(f"{dialog.type}: {dialog.message}")
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", handle)
    return asked


def test_revoke_and_delete_ask_first(portal_server, page):
    base = portal_server.url
    email = "confirm-browser@example.com"
    key = portal_server.create_user_and_key(email, PASSWORD)
    portal_server.manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model; from playground.models import Conversation; "
        f"Conversation.objects.create(user=get_user_model().objects.get(email='{email}'), "
        "title='Keep me unless I say so', model='SmolLM2-135M-Instruct')",
    )
    headers = {"Authorization": f"Bearer {key}"}
    with_strict_csp(page)
    errors = collect_errors(page)
    log_in(page, base, email)

    # Revoking a key: Cancel keeps it working, OK revokes it.
    page.goto(f"{base}/console/keys/")
    row = page.locator("tr", has_text="e2e")
    asked = answer_dialogs(page, accept=False)
    row.get_by_role("button", name="Revoke e2e").click()
    page.wait_for_timeout(500)  # a submission, had there been one, would have navigated by now
    assert asked == ["confirm: Revoke this key? Requests using it will be rejected."]
    assert page.url == f"{base}/console/keys/"
    assert "active" in row.inner_text()
    assert httpx.get(f"{base}/v1/models", headers=headers).status_code == 200

    asked = answer_dialogs(page, accept=True)
    row.get_by_role("button", name="Revoke e2e").click()
    expect(page.locator("tr", has_text="e2e")).to_contain_text("revoked")
    assert asked == ["confirm: Revoke this key? Requests using it will be rejected."]
    assert httpx.get(f"{base}/v1/models", headers=headers).status_code == 401

    # Deleting a conversation: Cancel keeps it, OK deletes it.
    page.goto(f"{base}/playground/")
    item = page.locator("#pg-conversations li", has_text="Keep me unless I say so")
    item.locator("summary", has_text="Manage").click()
    asked = answer_dialogs(page, accept=False)
    item.get_by_role("button", name="Delete “Keep me unless I say so”").click()
    page.wait_for_timeout(500)
    assert asked == ["confirm: Delete this conversation?"]
    page.reload()
    expect(item).to_have_count(1)

    item.locator("summary", has_text="Manage").click()
    asked = answer_dialogs(page, accept=True)
    item.get_by_role("button", name="Delete “Keep me unless I say so”").click()
    expect(page.locator(".messages")).to_contain_text("deleted")
    assert asked == ["confirm: Delete this conversation?"]
    expect(item).to_have_count(0)

    assert errors == []


def test_pages_load_their_modules_without_console_errors(portal_server, page):
    base = portal_server.url
    email = "modules-browser@example.com"
    portal_server.create_user_and_key(email, PASSWORD)
    with_strict_csp(page)
    errors = collect_errors(page)
    log_in(page, base, email)

    # The playground's module graph ran: it connected the socket and filled in "View code".
    response = page.goto(f"{base}/playground/")
    assert response.headers["content-security-policy"] == STRICT_CSP
    expect(page.locator("#pg-status")).to_have_text("Connected.", timeout=15_000)
    expect(page.locator("#pg-code-curl")).to_contain_text("/v1/chat/completions")
    page.get_by_role("tab", name="Completion").click()
    expect(page.locator("#pg-code-curl")).to_contain_text("/v1/completions")

    page.get_by_role("link", name="API keys").click()
    page.wait_for_url(f"{base}/console/keys/")
    page.get_by_role("link", name="Usage").click()
    expect(page.locator("#requests-chart")).to_have_attribute("data-rendered", "true")  # usage.js ran
    page.wait_for_timeout(300)  # let any late error arrive

    assert errors == []
