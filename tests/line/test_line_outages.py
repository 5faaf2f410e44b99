"""LINE during a database outage: real PostgreSQL behind a fault proxy, the fake LINE API, the real engine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import line_events as ev
import pytest
from conftest import LineApp, line_overrides
from fastapi.testclient import TestClient
from faultproxy import FaultProxy
from sqlalchemy.engine import make_url

from bot.api.main import create_app
from bot.dialogue.factory import build_engine


@pytest.fixture
def database(pg_session_url: str) -> Iterator[FaultProxy]:
    url = make_url(pg_session_url)
    with FaultProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield proxy


@pytest.fixture
def line_pg_app(app_settings: Any, searcher: Any, fake_line: Any, pg_session_url: str, database: FaultProxy):
    url = make_url(pg_session_url).set(host="127.0.0.1", port=database.port).render_as_string(hide_password=False)
    settings = app_settings.model_copy(update={**line_overrides(fake_line), "database_url": url})
    services = build_engine(settings, searcher=searcher)
    try:
        with TestClient(create_app(settings, services)) as client:
            yield LineApp(client, settings, services, fake_line)
    finally:
        services.store.close()


def test_the_webhook_answers_503_while_it_cannot_persist_and_the_redelivery_is_answered_once(
    line_pg_app: LineApp, database: FaultProxy
) -> None:
    user = ev.user_id()
    event = ev.text(user, "引き継ぎの期間が短すぎて困っています", reply_token=line_pg_app.fake.issue_reply_token(user))
    database.set_mode("down")
    refused = line_pg_app.post(event)
    assert refused.status_code == 503 and refused.json()["error"] == "unavailable"

    database.set_mode("forward")
    for _ in range(3):  # LINE redelivers the same request (same webhookEventId), maybe more than once
        assert line_pg_app.post(event).status_code == 200
    line_pg_app.wait_for(user, 1)
    line_pg_app.wait_idle()
    assert len(line_pg_app.fake.delivered_to(user)) == 1
