"""System checks: say when knowledge bases on SQLite fall back to exact numpy search."""

from __future__ import annotations

import importlib.util
import sys

from django.conf import settings
from django.core.checks import Warning, register
from django.db import connections

from knowledge.sqlite_driver import loads_extensions


@register()
def sqlite_vec_loadable(app_configs, **kwargs) -> list:
    if connections["default"].vendor != "sqlite" or settings.KNOWLEDGE_VECTOR_INDEX not in ("auto", "sqlite-vec"):
        return []
    problem = None
    if importlib.util.find_spec("sqlite_vec") is None:
        problem = "the sqlite-vec package is not installed"
    elif not loads_extensions(sys.modules["sqlite3"]):
        problem = "this Python's sqlite3 cannot load extensions and pysqlite3 (pysqlite3-binary) is not installed"
    if problem is None:
        return []
    return [
        Warning(
            f"Knowledge bases cannot use sqlite-vec: {problem}.",
            hint="They search exactly with numpy instead (fine for small bases). Install requirements.txt.",
            id="knowledge.W001",
        )
    ]
