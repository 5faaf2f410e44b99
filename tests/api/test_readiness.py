"""/readyz tells the truth now, not at start-up: real PostgreSQL and Redis behind a fault proxy that takes them away.

Polls have generous deadlines (a failing test, not a measurement); how fast readiness flips is measured by
bench/fault_harness.py.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from faultproxy import FaultProxy
from sqlalchemy.engine import make_url
from webhelpers import Visitor

from bot.api.main import create_app

POLL_DEADLINE = 60.0


def through(proxy: FaultProxy, url: str) -> str:
    return make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


def wait_for_readiness(client: TestClient, status: int) -> dict[str, Any]:
    deadline = time.monotonic() + POLL_DEADLINE
    while True:
        response = client.get("/readyz")
        if response.status_code == status:
            return dict(response.json())
        if time.monotonic() > deadline:
            pytest.fail(f"/readyz stayed {response.status_code} {response.json()} (waiting for {status})")
        time.sleep(0.2)


@pytest.fixture
def database(pg_session_url: str) -> FaultProxy:
    url = make_url(pg_session_url)
    with FaultProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield proxy


def test_readiness_follows_the_database_and_redis(app_settings, pg_session_url, database, redis_url) -> None:
    target = make_url(redis_url)
    with FaultProxy(target.host or "127.0.0.1", target.port or 6379) as redis_proxy:
        settings = app_settings.model_copy(
            update={
                "database_url": through(database, pg_session_url),
                "redis_url": through(redis_proxy, redis_url),
            }
        )
        with TestClient(create_app(settings)) as client:
            checks = wait_for_readiness(client, 200)["checks"]
            assert {"engine", "store", "index", "redis"} <= set(checks)

            database.set_mode("down")  # PostgreSQL restarts
            assert wait_for_readiness(client, 503)["checks"]["store"].startswith("unavailable")
            database.set_mode("forward")
            wait_for_readiness(client, 200)

            redis_proxy.set_mode("hang")  # Redis accepts connections and never answers
            deadline = time.monotonic() + POLL_DEADLINE
            while not (checks := client.get("/readyz").json()["checks"])["redis"].startswith("degraded"):
                assert time.monotonic() < deadline, checks
                time.sleep(0.2)
            # reported, but still ready: the limits are counted in-process meanwhile, and answers flow
            assert client.get("/readyz").status_code == 200
            redis_proxy.set_mode("forward")
            deadline = time.monotonic() + POLL_DEADLINE
            while client.get("/readyz").json()["checks"]["redis"] != "ok":
                assert time.monotonic() < deadline
                time.sleep(0.2)


def test_a_worker_started_while_the_database_is_down_serves_once_it_is_back(
    app_settings, pg_session_url, database
) -> None:
    database.set_mode("down")
    settings = app_settings.model_copy(update={"database_url": through(database, pg_session_url)})
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200  # alive: the orchestrator must not kill it
        body = wait_for_readiness(client, 503)
        assert body["checks"]["engine"].startswith("unavailable")
        refused = client.post("/api/conversations", headers=Visitor(client).headers)
        assert refused.status_code == 503 and refused.json()["message"]  # a sentence the widget shows

        database.set_mode("forward")
        wait_for_readiness(client, 200)
        visitor = Visitor(client)
        conversation = visitor.start()
        assert visitor.send(conversation, "ありがとう").status_code == 200


def test_a_message_sent_during_a_database_outage_gets_a_503_and_its_retry_is_stored_once(
    app_settings, pg_session_url, database
) -> None:
    settings = app_settings.model_copy(update={"database_url": through(database, pg_session_url)})
    with TestClient(create_app(settings)) as client:
        wait_for_readiness(client, 200)
        visitor = Visitor(client)
        conversation = visitor.start()
        database.set_mode("down")
        refused = visitor.send(conversation, "引き継ぎの期間が短すぎて困っています")
        assert refused.status_code == 503
        assert refused.headers["retry-after"] and "もう一度" in refused.json()["message"]
        streamed = visitor.stream(conversation, "引き継ぎの期間が短すぎて困っています")
        assert streamed.status_code == 503 and streamed.json() == refused.json()
        assert client.get(f"/api/conversations/{conversation}/messages", headers=visitor.headers).status_code == 503

        database.set_mode("forward")
        wait_for_readiness(client, 200)
        assert visitor.send(conversation, "引き継ぎの期間が短すぎて困っています").status_code == 200
        messages = visitor.history(conversation).json()["messages"]
        assert [m["role"] for m in messages] == ["user", "bot"]  # the failed attempts left nothing behind
