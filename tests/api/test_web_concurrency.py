"""Concurrent conversations over real HTTP (uvicorn): each visitor gets its own answers and its own history."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
from live_server import LiveServer
from webhelpers import new_token, parse_sse

from bot.api.main import create_app

WORRIES = [
    "給料を上げてほしいと上司に言いたいが切り出し方がわからない",
    "副業を始めたいけど会社の規則が気になる",
    "親の介護と仕事の両立が難しくなってきた",
    "営業の数字が3か月連続で未達です",
    "残業が続いて疲れている",
    "転職するか迷っている",
]


def test_concurrent_conversations_are_kept_apart(app_settings, services):
    app = create_app(app_settings.model_copy(update={"web_heartbeat_seconds": 0.2}), services=services)
    start = threading.Barrier(len(WORRIES))

    def converse(n: int, server_url: str) -> dict:
        token = new_token()
        headers = {"X-Visitor-Token": token}
        with httpx.Client(base_url=server_url, headers=headers, timeout=120) as http:
            cid = http.post("/api/conversations").json()["conversation_id"]
            start.wait()
            # Half stream, half use the JSON endpoint; the second turn is a follow-up on the first.
            if n % 2:
                first = parse_sse(
                    http.post(f"/api/conversations/{cid}/messages/stream", json={"text": WORRIES[n]}).text
                )
                first_answer = first[-1][1]["answer"]
            else:
                first_answer = http.post(f"/api/conversations/{cid}/messages", json={"text": WORRIES[n]}).json()[
                    "answer"
                ]
            second = http.post(f"/api/conversations/{cid}/messages", json={"text": "次のステップは？"}).json()["answer"]
            history = http.get(f"/api/conversations/{cid}/messages").json()
            return {"cid": cid, "token": token, "first": first_answer, "second": second, "history": history}

    with LiveServer(app) as server, ThreadPoolExecutor(len(WORRIES)) as pool:
        results = list(pool.map(lambda n: converse(n, server.url), range(len(WORRIES))))
        # Nobody can read anyone else's conversation, even knowing its id.
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for mine, theirs in zip(results, results[1:] + results[:1], strict=True):
                peek = http.get(
                    f"/api/conversations/{theirs['cid']}/messages", headers={"X-Visitor-Token": mine["token"]}
                )
                assert peek.status_code == 404

    topics = [r["first"]["topic"] for r in results]
    assert len(set(topics)) == len(WORRIES), topics  # six different worries, six different articles
    for worry, result in zip(WORRIES, results, strict=True):
        messages = result["history"]["messages"]
        assert [m["text"] for m in messages if m["role"] == "user"] == [worry, "次のステップは？"]
        bots = [m["answer"] for m in messages if m["role"] == "bot"]
        assert bots == [result["first"], result["second"]]
        assert result["second"]["topic"] == result["first"]["topic"]  # the follow-up stayed on its own article
