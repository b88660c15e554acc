from __future__ import annotations

import pytest

from tests.knowledge.helpers import FakeModels


@pytest.fixture
def fake_models(monkeypatch, settings) -> FakeModels:
    from inference import services, tasks

    settings.BATCH_RUNNER = "off"  # the tests run ingestion themselves (knowledge.ingest)
    models = FakeModels()
    monkeypatch.setattr(services, "embeddings_create", models.embeddings_create)
    monkeypatch.setattr(tasks, "ask", models.ask)
    return models


# The playground's socket fixtures (committed users with sessions, the registry's models).
from tests.playground.conftest import alice, alice_cookie, bob, open_socket, roomy_plan  # noqa: E402, F401
