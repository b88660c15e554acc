"""Calling the async /v1 views in-process, streams included, on the test's own database connection."""

from __future__ import annotations

import json
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from django.test import AsyncClient


@dataclass
class Result:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)

    def events(self) -> list:
        """SSE `data:` payloads, JSON-decoded; the final "[DONE]" kept as a string."""
        payloads = []
        for block in self.body.decode().split("\n\n"):
            if block.startswith("data: "):
                data = block[len("data: ") :]
                payloads.append(data if data == "[DONE]" else json.loads(data))
        return payloads


def call(method: str, path: str, key: str | None = None, body=None, **headers) -> Result:
    """One request through the full ASGI stack, consumed to its last byte in the same event loop.

    Run through async_to_sync from the test's thread, so the view's database work happens on the
    test's connection and sees its uncommitted data.
    """

    async def run() -> Result:
        client = AsyncClient()
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        kwargs = {"headers": headers}
        if body is not None:
            kwargs.update(data=json.dumps(body), content_type="application/json")
        response = await getattr(client, method.lower())(path, **kwargs)
        if response.streaming:
            content = b"".join([chunk async for chunk in response.streaming_content])
        else:
            content = response.content
        return Result(response.status_code, {name.lower(): value for name, value in response.items()}, content)

    return async_to_sync(run)()
