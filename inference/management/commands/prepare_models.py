from __future__ import annotations

import asyncio
import time

from django.core.management.base import BaseCommand, CommandError

from inference.engine.types import EngineError
from inference.registry import enabled_specs
from inference.runtime import sync_specs


class Command(BaseCommand):
    help = (
        "Load every enabled in-process model once, converting and caching the embedded GGUF model, "
        "so the server starts in seconds."
    )

    def handle(self, *args, **options):
        specs = enabled_specs()
        manager = sync_specs(specs)

        async def load_all() -> None:
            for name, spec in specs.items():
                if spec.backend == "upstream":
                    continue
                started = time.monotonic()
                await manager.load(name)
                self.stdout.write(f"{name}: ready in {time.monotonic() - started:.1f}s")
            await manager.aclose()

        try:
            asyncio.run(load_all())
        except EngineError as exc:
            raise CommandError(str(exc)) from exc
