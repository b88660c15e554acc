"""A sqlite3 module that can load SQLite extensions (sqlite-vec), for Django's SQLite backend.

Python's own `sqlite3` is often built without extension loading (pyenv's and python.org's builds:
`enable_load_extension` is missing). Then, and only then, `pysqlite3` (pysqlite3-binary: the same
DB-API module with its own, recent SQLite) stands in for `sqlite3` before Django's backend imports
it. Without either, knowledge bases search with the exact numpy index instead (knowledge.vector_index).
Plain Python, no Django: called from settings.
"""

from __future__ import annotations

import sqlite3
import sys


def loads_extensions(module) -> bool:
    return hasattr(module.Connection, "enable_load_extension")


def use_sqlite_with_extensions() -> bool:
    """True when the `sqlite3` Django will use can load extensions."""
    if loads_extensions(sqlite3):
        return True
    if "django.db.backends.sqlite3.base" in sys.modules:
        return False  # too late to switch: the backend holds the module it imported
    try:
        import pysqlite3
        from pysqlite3 import dbapi2
    except ImportError:
        return False
    sys.modules["sqlite3"] = pysqlite3
    sys.modules["sqlite3.dbapi2"] = dbapi2
    return True
