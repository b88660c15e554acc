"""ASGI entry point: HTTP through Django (/v1's model endpoints on a lean path, see api_handler),
websockets through Channels, and the lifespan protocol for loading models at start-up
(INFERENCE_PRELOAD) and stopping them at shutdown."""

from __future__ import annotations

import logging
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "llmos_portal.settings")
django_asgi_app = get_asgi_application()  # initialise Django before importing consumers

from asgiref.sync import sync_to_async  # noqa: E402
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from batches.dispatch import resume_active_batches  # noqa: E402
from inference.lifespan import lifespan as inference_lifespan  # noqa: E402
from llmos_portal.api_handler import ApiHandler  # noqa: E402
from playground.routing import websocket_urlpatterns  # noqa: E402


async def lifespan(scope, receive, send) -> None:
    """The inference lifespan, and at start-up unfinished batch jobs resume (thread runner)."""

    async def receive_and_resume():
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await sync_to_async(resume_active_batches)()
            except Exception:
                logging.getLogger(__name__).exception("unfinished batch jobs could not be resumed")
        return message

    await inference_lifespan(scope, receive_and_resume, send)


application = ProtocolTypeRouter(
    {
        "http": ApiHandler(fallback=django_asgi_app),  # /v1's hot path, else Django's full handler
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        "lifespan": lifespan,
    }
)
