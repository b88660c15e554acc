"""Settings come from the environment through strict helpers, and production values are clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from llmos_portal.env import env_bool, env_int, env_list, env_str

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("Off", False), ("no", False)])
def test_env_bool_accepts_clear_values(monkeypatch, value, expected):
    monkeypatch.setenv("FLAG", value)
    assert env_bool("FLAG", not expected) is expected


def test_env_bool_rejects_anything_else(monkeypatch):
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured):
        env_bool("FLAG", False)


def test_env_int_rejects_text_and_values_below_minimum(monkeypatch):
    monkeypatch.setenv("N", "ten")
    with pytest.raises(ImproperlyConfigured):
        env_int("N", 1)
    monkeypatch.setenv("N", "0")
    with pytest.raises(ImproperlyConfigured):
        env_int("N", 1, minimum=1)


def test_env_str_required_and_list(monkeypatch):
    monkeypatch.delenv("MISSING", raising=False)
    with pytest.raises(ImproperlyConfigured):
        env_str("MISSING")
    monkeypatch.setenv("HOSTS", "a.example, b.example,,")
    assert env_list("HOSTS", []) == ["a.example", "b.example"]


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    unset = ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE")
    clean = {key: value for key, value in os.environ.items() if key not in unset}
    clean["DJANGO_SETTINGS_MODULE"] = "llmos_portal.settings"  # the real settings, not the tests'
    clean.update(env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True)


def test_secret_key_is_required_when_debug_is_off():
    result = _manage("check", DEBUG="false", ALLOWED_HOSTS="llm.example.com")
    assert result.returncode != 0 and "SECRET_KEY is required" in result.stderr
    assert "ImproperlyConfigured" in result.stderr


def test_debug_is_off_unless_set_so_nothing_starts_without_a_secret_key():
    result = _manage("check", ALLOWED_HOSTS="llm.example.com")
    assert result.returncode != 0 and "SECRET_KEY is required" in result.stderr


def test_development_uses_a_generated_per_checkout_key(tmp_path):
    from llmos_portal.env import development_secret_key

    path = tmp_path / "var" / "dev-secret-key"
    first = development_secret_key(path)
    assert len(first) >= 50 and development_secret_key(path) == first  # kept, not regenerated
    assert path.stat().st_mode & 0o077 == 0  # readable by its owner only
    assert development_secret_key(tmp_path / "other" / "key") != first
    printed = _manage("shell", "-c", "from django.conf import settings; print(settings.SECRET_KEY)", DEBUG="true")
    assert printed.returncode == 0, printed.stderr
    key = printed.stdout.strip().splitlines()[-1]
    assert key == (ROOT / "var" / "dev-secret-key").read_text().strip()
    assert "dev-only-insecure" not in key


def test_the_dev_key_file_is_not_committed():
    result = subprocess.run(["git", "check-ignore", "-q", "var/dev-secret-key"], cwd=ROOT)
    assert result.returncode == 0


def test_check_deploy_is_clean_with_production_values():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY="k3y-" + "x7Yq9" * 12,
        ALLOWED_HOSTS="llm.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
