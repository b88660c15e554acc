"""A person in a real headless Chromium signs up, creates a key, sees it once and revokes it."""

from __future__ import annotations

import re

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_signup_create_key_see_it_once_and_revoke(portal_server, page):
    base = portal_server.url
    page.goto(f"{base}/signup/")
    page.get_by_label("Email").fill("browser@example.com")
    page.get_by_label("Password", exact=True).fill("a-long-browser-passphrase-1")
    page.get_by_label("Password (again)").fill("a-long-browser-passphrase-1")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url(f"{base}/console/")
    assert "Your plan: Free" in page.content()

    page.get_by_role("link", name="Manage keys").click()
    page.get_by_label("Name").fill("from-the-browser")
    page.get_by_role("button", name="Create key").click()
    raw_key = page.locator("#new-key").inner_text().strip()
    assert re.fullmatch(r"llmos_[0-9A-Za-z]{36}", raw_key)

    # The key works against the API...
    headers = {"Authorization": f"Bearer {raw_key}"}
    assert httpx.get(f"{base}/v1/models", headers=headers).status_code == 200

    # ...and is never shown again.
    page.goto(f"{base}/console/keys/")
    assert raw_key not in page.content()
    row = page.locator("tr", has_text="from-the-browser")
    assert "active" in row.inner_text()

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke from-the-browser").click()
    page.wait_for_selector("text=revoked")
    assert "revoked" in page.locator("tr", has_text="from-the-browser").inner_text()
    assert httpx.get(f"{base}/v1/models", headers=headers).status_code == 401
