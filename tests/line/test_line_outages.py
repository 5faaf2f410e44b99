"""LINE during a database outage: real PostgreSQL behind a fault proxy, the fake LINE API, the real engine."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import line_events as ev
import pytest
from chromaserver import chroma_server, copy_active_index, http_client
from conftest import LineApp, line_overrides
from fastapi.testclient import TestClient
from faultproxy import FaultProxy
from sqlalchemy.engine import make_url

from bot.api.main import create_app
from bot.channels.line import texts
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


@pytest.fixture(scope="module")
def index_server(index_settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A `chroma run` server holding a copy of the built index (the compose topology's Chroma)."""
    from bot.retrieval.index import make_chroma_client

    with chroma_server(tmp_path_factory.mktemp("chroma-server")) as port:
        copy_active_index(make_chroma_client(index_settings), http_client(port))
        yield port


@pytest.fixture
def chroma(index_server: int) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", index_server) as proxy:
        yield proxy


def line_chroma_app(app_settings: Any, fake_line: Any, chroma: FaultProxy, **overrides: Any) -> Any:
    settings = app_settings.model_copy(
        update={**line_overrides(fake_line), "chroma_host": "127.0.0.1", "chroma_port": chroma.port, **overrides}
    )
    services = build_engine(settings)
    return settings, services


def test_a_search_index_outage_is_retried_and_every_message_is_answered_once(
    app_settings: Any, fake_line: Any, chroma: FaultProxy
) -> None:
    settings, services = line_chroma_app(app_settings, fake_line, chroma, line_retry_base_seconds=0.2)
    with TestClient(create_app(settings, services)) as client:
        app = LineApp(client, settings, services, fake_line)
        users = [ev.user_id() for _ in range(3)]
        chroma.set_mode("down")
        for user in users:
            app.say(user, "引き継ぎの期間が短すぎて困っています")
        time.sleep(2)  # a few failed attempts while Chroma is down
        assert all(not fake_line.delivered_to(user) for user in users)
        chroma.set_mode("forward")
        for user in users:
            app.wait_for(user, 1)
        app.wait_idle()
        for user in users:
            (delivery,) = fake_line.delivered_to(user)
            assert texts.APOLOGY not in json.dumps(delivery.messages, ensure_ascii=False)  # the answer itself
            turns = app.store.recent_turns(f"line:user:{user}", 10)
            assert [t.role for t in turns] == ["user", "bot"]  # failed attempts stored nothing
    services.store.close()


def test_when_the_retry_budget_is_spent_the_user_gets_one_apology(
    app_settings: Any, fake_line: Any, chroma: FaultProxy
) -> None:
    settings, services = line_chroma_app(
        app_settings, fake_line, chroma, line_retry_base_seconds=0.1, line_retry_budget_seconds=2.0
    )
    with TestClient(create_app(settings, services)) as client:
        app = LineApp(client, settings, services, fake_line)
        user = ev.user_id()
        chroma.set_mode("down")
        app.say(user, "引き継ぎの期間が短すぎて困っています")
        (apology,) = app.wait_for(user, 1)
        app.wait_idle()
        assert apology.method == "push" and texts.APOLOGY in json.dumps(apology.messages, ensure_ascii=False)
        chroma.set_mode("forward")
        time.sleep(1)  # nothing else arrives: the event is finished, not retried again
        assert len(fake_line.delivered_to(user)) == 1
    services.store.close()
