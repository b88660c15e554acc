"""The playground websocket, `ws/playground/`. Thin: frame checks and caps here, the work in
playground.generation.

The protocol (frames, events, error codes) is documented in one place: docs/playground.md.

The ASGI stack wraps it in AllowedHostsOriginValidator (the Origin must match ALLOWED_HOSTS) and
AuthMiddlewareStack (the Django session). Anonymous sockets get an `error` event
`not_authenticated` and are closed with code 4401.
"""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import cast

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.http import HttpRequest
from django.utils import translation
from django.utils.translation import gettext as _

from accounts import ip_rules
from accounts.selectors import session_is_current
from llmos_portal import jsonbody
from playground.generation import GenerationControl, max_concurrent_per_user, run_generation, user_slots

logger = logging.getLogger(__name__)

CLOSE_NOT_AUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
DISCONNECT_SETTLE_SECONDS = 10.0


def max_message_bytes() -> int:
    return settings.PLAYGROUND_MAX_MESSAGE_BYTES


def language_of(scope: dict) -> str:
    """The socket's language, chosen as LocaleMiddleware chooses a page's: the switcher's cookie,
    else the browser's Accept-Language, else English."""
    headers = dict(scope.get("headers") or [])
    accept = headers.get(b"accept-language", b"").decode("latin-1")
    request = SimpleNamespace(COOKIES=scope.get("cookies") or {}, META={"HTTP_ACCEPT_LANGUAGE": accept})
    return translation.get_language_from_request(cast(HttpRequest, request))


class PlaygroundConsumer(AsyncJsonWebsocketConsumer):
    # Nothing reaches this consumer through the channel layer: each socket streams from a task in
    # the process that holds it. An alias with no CHANNEL_LAYERS entry makes channels skip the
    # layer, which spares every open socket a Redis connection and a blocking poll under REDIS_URL.
    channel_layer_alias = "playground-no-layer"

    task: asyncio.Task | None = None
    control: GenerationControl | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        # The user's page language for this socket's messages (its task and the generation tasks it
        # starts). Errors that come from the shared API code (limits, the engine) stay in English.
        translation.activate(language_of(self.scope))
        # Accept, say why, then close with 4401: a refused handshake reaches browsers as a bare 1006.
        await self.accept()
        rules = await database_sync_to_async(ip_rules.current_rules)()
        address = ip_rules.client_ip_from_scope(self.scope)
        if ip_rules.refused(rules, address, api=False):  # the operators' site-wide IP rules
            await self.error(
                "ip_not_allowed", _("Requests from %(address)s are not allowed.") % {"address": address}, status=403
            )
            await self.close(code=CLOSE_FORBIDDEN)
            return
        if user is None or not user.is_authenticated:
            await self.error("not_authenticated", _("Log in to use the playground."), status=401)
            await self.close(code=CLOSE_NOT_AUTHENTICATED)
            return
        self.user_id = user.pk
        await self.send_json({"type": "ready", "max_message_bytes": max_message_bytes()})

    async def error(self, code: str, message: str, *, status: int = 400) -> None:
        await self.send_json({"type": "error", "code": code, "message": message, "status": status})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs) -> None:
        if not hasattr(self, "user_id"):
            return  # closing an anonymous socket; ignore anything it still sends
        if text_data is None:
            await self.error("invalid_message", "Send JSON text frames.")
            return
        limit = max_message_bytes()
        if len(text_data) > limit or len(text_data.encode()) > limit:
            await self.error(
                "message_too_large", _("Messages are limited to %(limit)d bytes.") % {"limit": limit}, status=413
            )
            return
        try:
            content = jsonbody.loads(text_data)
        except jsonbody.JsonBodyError as exc:
            await self.error("invalid_json", f"That message is not valid JSON: {exc.message}")
            return
        if not isinstance(content, dict):
            await self.error("invalid_message", "A message must be a JSON object with a `type`.")
            return
        await self.receive_json(content)

    async def receive_json(self, content: dict, **kwargs) -> None:
        kind = content.get("type")
        if kind == "generate":
            await self.start_generation(content)
        elif kind == "stop":
            self.stop_generation()
        elif kind == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.error("invalid_message", "Unknown message type; expected generate, stop or ping.")

    async def session_is_current(self) -> bool:
        session = self.scope.get("session")
        session_key = getattr(session, "session_key", None)
        return await database_sync_to_async(session_is_current)(session_key=session_key, user_id=self.user_id)

    async def start_generation(self, content: dict) -> None:
        # Re-checked per generation: a socket opened before a logout (here or "everywhere"), a
        # password change or a deactivation must not keep generating.
        if not await self.session_is_current():
            await self.error("not_authenticated", _("Your session has ended. Log in again."), status=401)
            await self.close(code=CLOSE_NOT_AUTHENTICATED)
            return
        if self.control is not None and not self.control.settled:
            await self.error(
                "generation_in_progress", _("A reply is still being generated; stop it first."), status=409
            )
            return
        limit = max_concurrent_per_user()
        if not user_slots.acquire(self.user_id, limit):
            await self.error(
                "too_many_generations",
                _("You already have %(limit)d replies generating in other tabs; wait or stop one.") % {"limit": limit},
                status=429,
            )
            return
        control = GenerationControl()
        user_id = self.user_id
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                user_slots.release(user_id)

        async def run() -> None:
            try:
                await run_generation(
                    user_id=user_id, payload=content, control=control, send=self.send_json, on_settled=release
                )
            finally:
                release()

        self.control = control
        self.task = asyncio.create_task(run(), name=control.generation_id)

    def stop_generation(self) -> None:
        """Cancel the running generation server-side; the task then sends `stopped`."""
        if self.task is None or self.task.done() or self.control is None or not self.control.cancellable:
            return
        self.control.stop_requested = True
        self.task.cancel()

    async def disconnect(self, code: int) -> None:
        task, control = self.task, self.control
        if task is None or task.done() or control is None:
            return
        cancel = control.cancellable
        control.disconnected = True
        if cancel:
            task.cancel()
        # Let it close the engine stream and settle usage before this consumer goes away.
        await asyncio.wait([task], timeout=DISCONNECT_SETTLE_SECONDS)
