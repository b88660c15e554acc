"""The usage charts render in a real headless Chromium, with the numbers the API produced."""

from __future__ import annotations

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
PASSWORD = "e2e-long-passphrase-1"


def test_usage_charts_render(portal_server, page):
    key = portal_server.create_user_and_key("charts@example.com", PASSWORD)
    headers = {"Authorization": f"Bearer {key}"}
    for _ in range(3):
        response = httpx.post(
            f"{portal_server.url}/v1/embeddings",
            json={"model": "all-MiniLM-L6-v2", "input": "chart me"},
            headers=headers,
            timeout=60,
        )
        assert response.status_code == 200
    portal_server.usage_rows("charts@example.com", expected=3)

    page.goto(f"{portal_server.url}/login/")
    page.get_by_label("E-mail").fill("charts@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{portal_server.url}/console/")
    page.get_by_role("link", name="Usage").click()

    for chart_id in ("requests-chart", "tokens-chart"):
        page.wait_for_selector(f"#{chart_id}[data-rendered='true']")
        painted = page.evaluate(
            """(id) => {
                const canvas = document.getElementById(id);
                const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
                let count = 0;
                for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) count++;
                return count;
            }""",
            chart_id,
        )
        assert painted > 500, f"{chart_id} drew nothing"
    today_row = page.locator("#daily-table tbody tr").last
    assert today_row.locator("td").nth(1).inner_text() == "3"
    page.screenshot(path=str(portal_server.log_dir / "usage.png"), full_page=True)
