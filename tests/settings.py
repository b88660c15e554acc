"""Settings for the test suite and mypy: the project's settings with development values set
explicitly (DEBUG defaults to off in llmos_portal.settings, and then a SECRET_KEY is required).
Anything already in the environment wins."""

from __future__ import annotations

import os

os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("SECRET_KEY", "tests-only-not-a-secret-" + "x" * 40)

from llmos_portal.settings import *  # noqa: F403
