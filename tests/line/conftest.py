"""LINE test fixtures: the fake LINE API server, settings pointing at it, and the app with the real engine and store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import line_events as ev
import pytest
from fake_line_api import FakeLine, running_fake
from fastapi.testclient import TestClient
from pydantic import SecretStr

SECRET = "0123456789abcdef0123456789abcdef"
ACCESS_TOKEN = "test-access-token"


@pytest.fixture(scope="session")
def fake_line_server() -> Iterator[FakeLine]:
    with running_fake(ACCESS_TOKEN) as fake:
        yield fake


@pytest.fixture
def fake_line(fake_line_server: FakeLine) -> Iterator[FakeLine]:
    fake_line_server.reset()
    yield fake_line_server
    # Whatever a test does, nothing we sent may break LINE's spec or limits.
    assert fake_line_server.problems == []


def line_overrides(fake: FakeLine, **extra: Any) -> dict[str, Any]:
    return {
        "line_channel_secret": SecretStr(SECRET),
        "line_channel_access_token": SecretStr(ACCESS_TOKEN),
        "line_api_base_url": fake.url,
        "line_request_timeout": 2.0,
        "line_retry_base_seconds": 0.01,
        "line_inbox_poll_seconds": 0.1,
        "line_worker_concurrency": 4,
        **extra,
    }


@pytest.fixture
def line_settings(app_settings: Any, fake_line: FakeLine) -> Any:
    return app_settings.model_copy(update=line_overrides(fake_line))


class LineApp:
    """The app under test, with helpers to post signed webhooks and wait for what reaches the fake LINE server."""

    def __init__(self, client: TestClient, settings: Any, services: Any, fake: FakeLine) -> None:
        self.client = client
        self.settings = settings
        self.services = services
        self.store = services.store
        self.fake = fake

    @property
    def channel(self) -> Any:
        return self.client.app.state.line  # type: ignore[attr-defined]

    def post(
        self, *events: dict[str, Any], raw: bytes | None = None, signature: str | None = None, validate: bool = True
    ) -> Any:
        data = raw if raw is not None else ev.body(*events, validate=validate)
        sig = signature if signature is not None else ev.sign(data, SECRET)
        return self.client.post(
            "/line/webhook", content=data, headers={"X-Line-Signature": sig, "Content-Type": "application/json"}
        )

    def say(self, user: str, text: str, **kwargs: Any) -> dict[str, Any]:
        event = ev.text(user, text, reply_token=self.fake.issue_reply_token(user), **kwargs)
        response = self.post(event)
        assert response.status_code == 200, response.text
        return event

    def wait_for(self, to: str, count: int, timeout: float = 30.0) -> list[Any]:
        assert self.fake.wait_for(lambda: len(self.fake.delivered_to(to)) >= count, timeout), (
            f"expected {count} deliveries to {to}, got {len(self.fake.delivered_to(to))}; calls: "
            + json.dumps([(c.endpoint, c.status) for c in self.fake.calls])
        )
        return self.fake.delivered_to(to)

    def wait_idle(self, timeout: float = 30.0) -> None:
        def idle() -> bool:
            return self.store.inbox_pending_count("line") == 0 and self.channel.worker.idle

        assert self.fake.wait_for(idle, timeout), "the inbox did not drain"


@pytest.fixture(scope="module")
def line_module_app(
    index_settings: Any, searcher: Any, fake_line_server: FakeLine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LineApp]:
    """One app (real engine, real store on its own database) per test module: building the engine and starting the
    app for every test would double the suite's time. Tests use fresh LINE user ids, so they do not meet."""
    from bot.api.main import create_app
    from bot.dialogue.factory import build_engine

    base = index_settings.model_copy(
        update={
            "data_dir": tmp_path_factory.mktemp("line"),
            "models_path": index_settings.models_dir,
            "chroma_path": index_settings.data_dir / "chroma",
        }
    )
    settings = base.model_copy(update=line_overrides(fake_line_server))
    services = build_engine(settings, searcher=searcher)
    try:
        with TestClient(create_app(settings, services)) as client:
            yield LineApp(client, settings, services, fake_line_server)
    finally:
        services.store.close()


@pytest.fixture
def line_app(line_module_app: LineApp, fake_line: FakeLine) -> Iterator[LineApp]:
    yield line_module_app
    line_module_app.wait_idle()  # the next test starts with nothing in flight
