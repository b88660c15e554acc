"""Pages carry a strict Content-Security-Policy; APIs and the interactive API docs don't need one."""

from __future__ import annotations

import pytest

STRICT = "script-src 'self'; style-src 'self'"


@pytest.mark.parametrize("path", ["/", "/login/", "/signup/"])
def test_pages_have_a_strict_policy(client, db, path):
    policy = client.get(path)["Content-Security-Policy"]
    assert STRICT in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy


def test_logged_in_pages_have_it_too(owner_client):
    for path in ("/console/keys/", "/console/usage/", "/playground/"):
        assert STRICT in owner_client.get(path)["Content-Security-Policy"], path


def test_the_admin_keeps_inline_styles_but_no_inline_scripts(client, operator):
    client.force_login(operator)
    policy = client.get("/admin/")["Content-Security-Policy"]
    assert "style-src 'self' 'unsafe-inline'" in policy and "script-src 'self';" in policy


def test_json_and_the_api_docs_get_no_policy(client, db):
    assert "Content-Security-Policy" not in client.get("/healthz")
    assert "Content-Security-Policy" not in client.get("/api/docs/")


def test_operators_can_turn_it_off(client, db, settings):
    settings.CONTENT_SECURITY_POLICY = ""
    assert "Content-Security-Policy" not in client.get("/login/")


def test_collectstatic_hashes_the_playground_module_imports(tmp_path, settings):
    """In production the entry module must import its siblings by their hashed names."""
    from django.core.management import call_command

    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": "llmos_portal.storage.StaticFilesStorage"}}
    call_command("collectstatic", "--noinput", verbosity=0)
    (entry,) = [p for p in (tmp_path / "js").glob("playground.*.js") if p.suffix == ".js" and p.stem.count(".") == 1]
    imports = [line for line in entry.read_text().splitlines() if line.startswith("import ")]
    assert imports and all(".js" in line and line.count(".") >= 3 for line in imports), imports
