from __future__ import annotations

import asyncio
import time

from django.core.management.base import BaseCommand, CommandError

from inference.engine.types import EngineError
from inference.registry import enabled_specs
from inference.runtime import new_manager


class Command(BaseCommand):
    help = (
        "Load every enabled in-process model once, converting and caching the embedded GGUF model, "
        "so the server starts in seconds."
    )

    def handle(self, *args, **options):
        specs = enabled_specs()
        manager = new_manager(specs.values())  # its own, closed at the end

        async def load_all() -> None:
            try:
                for name, spec in specs.items():
                    if spec.backend == "upstream":
                        continue
                    started = time.monotonic()
                    await manager.load(name)
                    self.stdout.write(f"{name}: ready in {time.monotonic() - started:.1f}s")
            finally:
                await manager.aclose()

        try:
            asyncio.run(load_all())
        except EngineError as exc:
            raise CommandError(str(exc)) from exc
