"""ASGI lifespan: preload the in-process models at start-up when INFERENCE_PRELOAD is on, and
stop the engine's threads at shutdown."""

from __future__ import annotations

import logging

from django.conf import settings

from inference.registry import aenabled_specs
from inference.runtime import get_manager, schedule_load, sync_specs

logger = logging.getLogger(__name__)


async def lifespan(scope, receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                specs = await aenabled_specs()
                sync_specs(specs)
                if settings.INFERENCE_PRELOAD:
                    schedule_load([name for name, spec in specs.items() if spec.backend != "upstream"])
            except Exception:
                logger.exception("model preload could not start")
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await get_manager().aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return
