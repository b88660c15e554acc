"""Websocket routes."""

from __future__ import annotations

from django.urls import path

from playground.consumers import PlaygroundConsumer

websocket_urlpatterns: list = [
    path("ws/playground/", PlaygroundConsumer.as_asgi()),
]
