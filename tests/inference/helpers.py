"""Calling the async /v1 views in-process, streams included, on the test's own database connection."""

from __future__ import annotations

import json
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.test import AsyncClient

from llmos_portal.api_handler import ApiHandler

TIMEOUT_S = 120


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
    """One request through the ASGI handler production uses for `path` (the lean /v1 handler for
    the model endpoints, Django's with its middleware for the rest), read to its last byte.

    Run through async_to_sync from the test's thread, so the view's database work happens on the
    test's connection and sees its uncommitted data.
    """
    if ApiHandler.serves(path.partition("?")[0]):
        return _call_api_handler(method, path, key, body, headers)

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


def _call_api_handler(method: str, path: str, key: str | None, body, headers: dict[str, str]) -> Result:
    """One request through llmos_portal.api_handler.ApiHandler, as uvicorn would send it."""
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    raw_body = b"" if body is None else json.dumps(body).encode()
    if body is not None:
        headers.setdefault("Content-Type", "application/json")
    path, _, query = path.partition("?")
    header_list = [(b"content-length", str(len(raw_body)).encode())]
    header_list += [(name.lower().encode(), str(value).encode()) for name, value in headers.items()]
    scope = asgi_scope(path, method=method.upper(), query=query, headers=header_list)

    async def run() -> Result:
        communicator = ApplicationCommunicator(ApiHandler(fallback=None), scope)
        await communicator.send_input({"type": "http.request", "body": raw_body, "more_body": False})
        start = await communicator.receive_output(TIMEOUT_S)
        chunks = []
        while True:
            message = await communicator.receive_output(TIMEOUT_S)
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await communicator.wait(TIMEOUT_S)
        response_headers = {name.decode().lower(): value.decode() for name, value in start["headers"]}
        return Result(start["status"], response_headers, b"".join(chunks))

    return async_to_sync(run)()


def asgi_scope(path: str, *, method: str = "GET", query: str = "", host: bytes = b"testserver", headers=()) -> dict:
    """An HTTP scope as uvicorn sends it, from 127.0.0.1 to `host`."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", host), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
