"""The web chat API on the real engine and store: every endpoint, every limit and error, visitor binding."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from sqlalchemy import select
from webhelpers import Visitor, new_token, parse_sse

from bot.store import schema

ERROR_KEYS = {"error", "message"}
# A short worry on the seed's topic: the whole seed consultation costs seconds of retrieval per turn on 2 cores.
HANDOVER = "営業です。退職した上司の得意先を2週間の引き継ぎで任されたが、顧客に不信感を持たれている"


def assert_error(response, status: int, code: str, *, japanese: bool = True) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["error"] == code
    assert body["message"]
    if japanese:  # schema errors from malformed clients keep FastAPI's own wording; the widget never sends those
        assert re.search(r"[ぁ-んァ-ン一-龥]", body["message"]), "a Japanese message the widget shows"
    return body


# ----- conversations and binding ---------------------------------------------------------------------------------------
def test_a_conversation_id_is_unguessable_and_bound_to_the_token_hash(client, services):
    visitor = Visitor(client)
    ids = {visitor.start() for _ in range(5)}
    assert len(ids) == 5
    for cid in ids:
        assert re.fullmatch(r"web:[A-Za-z0-9_-]{32}", cid)
        owner = services.store.owner_of(cid)
        assert owner == hashlib.sha256(visitor.token.encode()).hexdigest()
        assert visitor.token not in owner  # only the hash is stored


@pytest.mark.parametrize("token", [None, "", "short", "x" * 31, "bad token with spaces and more than 32 chars!!"])
def test_a_missing_or_malformed_visitor_token_is_401(client, token):
    headers = {} if token is None else {"X-Visitor-Token": token}
    assert_error(client.post("/api/conversations", headers=headers), 401, "unauthorized")


def test_another_visitor_can_never_read_or_touch_a_conversation(client):
    owner, intruder = Visitor(client), Visitor(client)
    cid = owner.start()
    reply = owner.send(cid, HANDOVER).json()
    base = f"/api/conversations/{cid}"
    attempts = [
        ("GET", f"{base}/messages", None),
        ("POST", f"{base}/messages", {"text": "もっと詳しく"}),
        ("POST", f"{base}/messages/stream", {"text": "もっと詳しく"}),
        ("POST", f"{base}/feedback", {"turn_id": reply["turn_id"], "helpful": False}),
        ("POST", f"{base}/steps", {"step": "x"}),
        ("DELETE", base, None),
    ]
    for method, url, body in attempts:
        response = client.request(method, url, headers=intruder.headers, json=body)
        assert_error(response, 404, "not_found")
    # Exactly the answer an id that does not exist gets: nothing tells the intruder the conversation exists.
    unknown = client.get("/api/conversations/web:" + "A" * 32 + "/messages", headers=intruder.headers)
    assert unknown.json() == client.get(f"{base}/messages", headers=intruder.headers).json()
    for bad in ("web:short", "line:" + "A" * 32, "web:" + "A" * 31 + "%2F"):
        assert client.get(f"/api/conversations/{bad}/messages", headers=owner.headers).status_code == 404
    # The owner still sees an untouched conversation.
    history = owner.history(cid).json()
    assert [m["role"] for m in history["messages"]] == ["user", "bot"]


# ----- messages ------------------------------------------------------------------------------------------------------
def test_a_message_returns_the_answer_model(visitor, seed_text):
    cid = visitor.start()
    response = visitor.send(cid, seed_text)
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["conversation_id"] == cid and reply["turn_id"] > 0 and reply["conversation_deleted"] is False
    answer = reply["answer"]
    assert answer["kind"] == "advice" and answer["topic"] == "handover"
    assert answer["empathy"] and answer["situation_analysis"] and answer["career_strategy"]
    assert all(group["steps"] for group in answer["action_plan"])
    assert 2 <= len(answer["follow_ups"]) <= 4 and "もっと詳しく" in answer["follow_ups"]
    assert answer["escalation"] is None and answer["text"]
    cited = [s for s in answer["sources"] if s["cited"]]
    assert [s["article_id"] for s in cited] == ["handover-sudden-retirement"]
    assert all(s["url"] is None for s in answer["sources"])  # no WEB_ARTICLE_URL_TEMPLATE: titles only


def test_sources_link_to_the_articles_when_a_url_template_is_configured(make_client):
    client = make_client(web_article_url_template="https://media.example.com/articles/{article_id}?t={topic}")
    visitor = Visitor(client)
    assert client.get("/api/config").json()["article_links"] is True
    cid = visitor.start()
    answer = visitor.send(cid, HANDOVER).json()["answer"]
    first = answer["sources"][0]
    assert first["url"] == "https://media.example.com/articles/handover-sudden-retirement?t=handover"
    history = visitor.history(cid).json()
    assert history["messages"][1]["answer"]["sources"][0]["url"] == first["url"]


def test_follow_ups_and_clarify_choices_are_sent_back_as_text(visitor):
    cid = visitor.start()
    visitor.send(cid, HANDOVER)
    for chip in ("次のステップは？", "成功事例を教えて"):
        answer = visitor.send(cid, chip).json()["answer"]
        assert answer["kind"] == "advice" and answer["topic"] == "handover", chip
    clarify = visitor.send(visitor.start(), "つらい").json()["answer"]
    assert clarify["kind"] == "clarify" and clarify["follow_ups"]
    cid2 = visitor.start()
    visitor.send(cid2, "つらい")
    chosen = visitor.send(cid2, clarify["follow_ups"][0]).json()["answer"]
    assert chosen["kind"] == "advice" and chosen["topic"]


def test_a_crisis_message_gets_help_lines_with_phone_numbers(visitor):
    answer = visitor.send(visitor.start(), "もう死にたいです").json()["answer"]
    assert answer["kind"] == "escalation"
    resources = answer["escalation"]["resources"]
    assert any(re.fullmatch(r"0120-\d{3}-\d{3}", r["contact"]) for r in resources)


def test_the_delete_command_in_the_chat_reports_the_conversation_gone(visitor, services):
    cid = visitor.start()
    visitor.send(cid, HANDOVER)
    reply = visitor.send(cid, "データを削除").json()
    assert reply["conversation_deleted"] is True and reply["turn_id"] == 0
    assert services.store.recent_turns(cid, 50) == []
    assert_error(visitor.history(cid), 404, "not_found")


# ----- limits ----------------------------------------------------------------------------------------------------------
def test_message_length_limits_are_clear(make_client):
    client = make_client(web_max_message_chars=40)
    visitor = Visitor(client)
    cid = visitor.start()
    body = assert_error(visitor.send(cid, "あ" * 41), 413, "too_large")
    assert "40" in body["message"] and "41" in body["message"]
    assert visitor.send(cid, "残業が続いて疲れている" + "。" * 29).status_code == 200  # 40 characters exactly
    assert_error(visitor.send(cid, "   \n "), 422, "invalid_request")
    assert_error(
        client.post(f"/api/conversations/{cid}/messages", headers=visitor.headers, json={}),
        422,
        "invalid_request",
        japanese=False,
    )
    assert_error(
        client.post(f"/api/conversations/{cid}/messages/stream", headers=visitor.headers, json={"text": "い" * 41}),
        413,
        "too_large",
    )
    assert client.get("/api/config").json()["max_message_chars"] == 40


def test_request_bodies_over_the_size_limit_are_refused_with_json(make_client):
    client = make_client(web_max_body_bytes=2048)
    visitor = Visitor(client)
    cid = visitor.start()
    url = f"/api/conversations/{cid}/messages"
    big = ('{"text": "' + "x" * 4000 + '"}').encode()
    assert_error(
        client.post(url, headers={**visitor.headers, "Content-Type": "application/json"}, content=big), 413, "too_large"
    )

    def chunks():  # no Content-Length: counted as it arrives
        yield big[:1000]
        yield big[1000:]

    response = client.post(url, headers={**visitor.headers, "Content-Type": "application/json"}, content=chunks())
    assert_error(response, 413, "too_large")
    assert visitor.history(cid).json()["messages"] == []  # nothing reached the engine


def test_per_visitor_rate_limit_answers_429_with_retry_after(make_client):
    client = make_client(web_rate_limit_visitor=2, web_rate_limit_window=60)
    first, second = Visitor(client), Visitor(client)
    cid = first.start()
    assert first.send(cid, "残業が続いて疲れている").status_code == 200
    assert first.stream(cid, "次のステップは？").status_code == 200
    limited = first.send(cid, "もっと詳しく")
    body = assert_error(limited, 429, "rate_limited")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.headers["Retry-After"] in body["message"]
    assert_error(first.stream(cid, "もっと詳しく"), 429, "rate_limited")
    # Reading is not a message; another visitor behind the same IP is not limited by the first one.
    assert first.history(cid).status_code == 200
    other = second.start()
    assert second.send(other, "転職するか迷っている").status_code == 200
    assert "web_rate_limited_total" in client.get("/metrics").text


def test_per_ip_rate_limit_covers_every_api_call(make_client):
    client = make_client(web_rate_limit_ip=3, web_rate_limit_visitor=100)
    visitor = Visitor(client)
    cid = visitor.start()
    assert visitor.history(cid).status_code == 200
    assert client.get("/api/config").status_code == 200
    limited = visitor.history(cid)
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) >= 1
    assert client.get("/healthz").status_code == 200  # outside /api/


# ----- feedback, checklist, history, deletion -----------------------------------------------------------------------------
def test_feedback_is_stored_and_checked(visitor, services, client):
    cid = visitor.start()
    turn = visitor.send(cid, HANDOVER).json()["turn_id"]
    url = f"/api/conversations/{cid}/feedback"
    ok = client.post(
        url, headers=visitor.headers, json={"turn_id": turn, "helpful": False, "comment": " 具体的すぎた "}
    )
    assert ok.status_code == 201 and ok.json()["feedback_id"] > 0
    assert client.post(url, headers=visitor.headers, json={"turn_id": turn, "helpful": True}).status_code == 201
    with services.store.engine.connect() as conn:
        rows = conn.execute(select(schema.feedback).where(schema.feedback.c.conversation_id == cid)).all()
    assert sorted((r.turn_id, r.helpful, r.comment) for r in rows) == sorted(
        [(turn, False, "具体的すぎた"), (turn, True, None)]
    )
    other = visitor.start()
    other_turn = visitor.send(other, "転職するか迷っている").json()["turn_id"]
    assert_error(
        client.post(url, headers=visitor.headers, json={"turn_id": other_turn, "helpful": True}), 404, "not_found"
    )
    too_long = {"turn_id": turn, "helpful": True, "comment": "長" * 1001}
    assert_error(client.post(url, headers=visitor.headers, json=too_long), 413, "too_large")
    assert_error(
        client.post(url, headers=visitor.headers, json={"turn_id": "x", "helpful": 1}),
        422,
        "invalid_request",
        japanese=False,
    )


def test_history_for_a_reload_and_the_checklist(visitor, client):
    cid = visitor.start()
    assert visitor.history(cid).json() == {"conversation_id": cid, "messages": [], "done_steps": [], "handoff": None}
    first = visitor.send(cid, HANDOVER + "\n").json()
    visitor.send(cid, "次のステップは？")
    step = first["answer"]["action_plan"][0]["steps"][0]
    checked = client.post(f"/api/conversations/{cid}/steps", headers=visitor.headers, json={"step": step})
    assert checked.status_code == 200 and checked.json()["done_steps"] == [step]
    history = visitor.history(cid).json()
    assert [(m["role"], m["text"] if m["role"] == "user" else m["answer"]["kind"]) for m in history["messages"]] == [
        ("user", HANDOVER),
        ("bot", "advice"),
        ("user", "次のステップは？"),
        ("bot", "advice"),
    ]
    assert history["messages"][1]["id"] == first["turn_id"]
    assert history["messages"][1]["answer"] == first["answer"]
    assert history["done_steps"] == [step]


def test_delete_my_conversation(visitor, services, client):
    cid = visitor.start()
    turn = visitor.send(cid, HANDOVER).json()["turn_id"]
    client.post(f"/api/conversations/{cid}/feedback", headers=visitor.headers, json={"turn_id": turn, "helpful": True})
    keep = visitor.start()
    visitor.send(keep, "転職するか迷っている")
    deleted = client.delete(f"/api/conversations/{cid}", headers=visitor.headers)
    assert deleted.status_code == 204 and deleted.content == b""
    assert services.store.recent_turns(cid, 50) == [] and services.store.owner_of(cid) is None
    assert services.store.get_state(cid) is None
    with services.store.engine.connect() as conn:
        assert conn.execute(select(schema.feedback).where(schema.feedback.c.conversation_id == cid)).all() == []
    assert_error(visitor.history(cid), 404, "not_found")
    assert_error(client.delete(f"/api/conversations/{cid}", headers=visitor.headers), 404, "not_found")
    assert len(visitor.history(keep).json()["messages"]) == 2  # only that conversation


# ----- CORS, OpenAPI, readiness ---------------------------------------------------------------------------------------------
def test_cors_allows_only_the_configured_origins(make_client):
    client = make_client(web_allowed_origins="https://media.example.com, https://blog.example.jp")
    preflight = client.options(
        "/api/conversations",
        headers={
            "Origin": "https://media.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-visitor-token",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://media.example.com"
    assert "x-visitor-token" in preflight.headers["access-control-allow-headers"].lower()
    refused = client.options(
        "/api/conversations",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
    visitor = Visitor(client)
    made = client.post("/api/conversations", headers={**visitor.headers, "Origin": "https://blog.example.jp"})
    assert made.headers["access-control-allow-origin"] == "https://blog.example.jp"
    assert "retry-after" in made.headers["access-control-expose-headers"].lower()
    # Errors carry the header too, so the widget can read their message.
    error = client.get(
        "/api/conversations/web:nope/messages", headers={**visitor.headers, "Origin": "https://blog.example.jp"}
    )
    assert error.status_code == 404 and error.headers["access-control-allow-origin"] == "https://blog.example.jp"
    other = client.post("/api/conversations", headers={**visitor.headers, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_the_openapi_schema_documents_the_web_api(client):
    schema_doc = client.get("/openapi.json").json()
    paths = schema_doc["paths"]
    expected = {
        "/api/config": {"get"},
        "/api/conversations": {"post"},
        "/api/conversations/{conversation_id}": {"delete"},
        "/api/conversations/{conversation_id}/messages": {"get", "post"},
        "/api/conversations/{conversation_id}/messages/stream": {"post"},
        "/api/conversations/{conversation_id}/feedback": {"post"},
        "/api/conversations/{conversation_id}/steps": {"post"},
        "/widget.js": {"get"},
        "/": {"get"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    stream = paths["/api/conversations/{conversation_id}/messages/stream"]["post"]
    assert "text/event-stream" in stream["responses"]["200"]["content"]
    assert stream["responses"]["429"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    components = schema_doc["components"]["schemas"]
    assert {"ChatReply", "WebAnswer", "WebSource", "History", "ErrorBody", "FeedbackIn"} <= set(components)
    assert "url" in components["WebSource"]["properties"]


def test_not_ready_is_a_json_503(client):
    client.app.state.services = None
    assert_error(client.post("/api/conversations", headers={"X-Visitor-Token": new_token()}), 503, "unavailable")


def test_footnotes_show_as_sources_never_as_markers(visitor):
    cid = visitor.start()
    texts = ["同僚に無視されて陰口を言われています。職場で孤立しています", "もっと詳しく", "専門家に相談したい"]
    replies = [visitor.send(cid, text).json() for text in texts]
    assert replies[0]["answer"]["topic"] == "coworker-relations"
    for reply in replies:
        assert "[^" not in json.dumps(reply, ensure_ascii=False)
    assert "（出典：あかるい職場応援団）" in replies[1]["answer"]["text"]
    assert "（出典：" in replies[2]["answer"]["text"]
    assert "[^" not in json.dumps(visitor.history(cid).json(), ensure_ascii=False)


def test_a_question_gets_a_direct_answer_in_json_and_in_the_stream(visitor):
    cid = visitor.start()
    answer = visitor.send(cid, "退職って何か月前に言えばいい？").json()["answer"]
    assert answer["direct_answer"]["question"].endswith("？") and answer["direct_answer"]["answer"]
    events = parse_sse(visitor.stream(visitor.start(), "退職って何か月前に言えばいい？").text)
    sections = [data["name"] for name, data in events if name == "section"]
    assert sections.index("direct_answer") < sections.index("situation_analysis")
