"""Websocket routes (the playground consumer is added with the playground)."""

from __future__ import annotations

websocket_urlpatterns: list = []
