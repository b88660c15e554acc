"""Static files in production: compressed, hashed names, and ES module imports rewritten too."""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """The playground's entry module imports its siblings (`./playground/socket.js`): rewriting those
    imports to hashed names keeps a deployed page from mixing new and old modules."""

    support_js_module_import_aggregation = True
