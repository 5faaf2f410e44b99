"""Web API fixtures: the app on the real engine and store, driven in-process (TestClient) or over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from webhelpers import Visitor

from bot.api.main import create_app

SEED_ARTICLE = "handover-sudden-retirement"


@pytest.fixture
def seed_text(fixtures_dir) -> str:
    return (fixtures_dir / "seed_consultation.txt").read_text(encoding="utf-8")


@pytest.fixture
def make_client(app_settings, services) -> Iterator[Callable[..., TestClient]]:
    """`make_client(**settings_updates)`: a TestClient (lifespan entered) on this test's services."""
    clients: list[TestClient] = []

    def make(**updates: Any) -> TestClient:
        settings = app_settings.model_copy(update=updates)
        client = TestClient(create_app(settings, services=services))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client()


@pytest.fixture
def visitor(client) -> Visitor:
    return Visitor(client)
