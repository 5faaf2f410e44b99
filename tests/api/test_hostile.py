"""Hostile and malformed requests against the web API (issue 16): never a 500, always a JSON error or an answer.

The cases that broke (lone surrogates, 5,000-deep JSON, a turn id of 2**63) and the ones that held (ownership, path
tricks, SQL and script text, wrong types, sizes) are kept here so they keep holding.
"""

from __future__ import annotations

import json
import logging

import pytest
from webhelpers import Visitor

from bot.store import schema

WORRY = "上司とうまくいきません"


def _json(client, method: str, url: str, headers: dict[str, str], raw: bytes):
    return client.request(method, url, headers={**headers, "Content-Type": "application/json"}, content=raw)


def test_a_lone_surrogate_is_answered_not_500(visitor, services, client) -> None:
    cid = visitor.start()
    raw = json.dumps({"text": WORRY + "\ud800"}).encode("ascii")  # `\ud800` escaped, as a JSON client sends it
    response = _json(client, "POST", f"/api/conversations/{cid}/messages", visitor.headers, raw)
    assert response.status_code == 200, response.text
    history = visitor.history(cid).json()
    assert history["messages"][0]["text"] == WORRY + "\ufffd"
    # The stream, the feedback comment and a step's text go through the same door.
    stream = _json(client, "POST", f"/api/conversations/{cid}/messages/stream", visitor.headers, raw)
    assert stream.status_code == 200
    turn_id = response.json()["turn_id"]
    feedback = json.dumps({"turn_id": turn_id, "helpful": True, "comment": "\udfffよかった"}).encode("ascii")
    assert _json(client, "POST", f"/api/conversations/{cid}/feedback", visitor.headers, feedback).status_code == 201
    step = json.dumps({"step": "\ud83d"}).encode("ascii")
    checked = _json(client, "POST", f"/api/conversations/{cid}/steps", visitor.headers, step)
    assert checked.status_code == 200 and checked.json()["done_steps"] == ["\ufffd"]


def test_json_nested_five_thousand_deep_is_400(visitor, client) -> None:
    cid = visitor.start()
    for raw in (b'{"text": ' + b"[" * 5000 + b"]" * 5000 + b"}", b"[" * 5000, b'{"a":' * 5000):
        response = _json(client, "POST", f"/api/conversations/{cid}/messages", visitor.headers, raw)
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["error"] == "bad_request" and "形式" in body["message"]
    # Brackets inside the text are only text.
    assert visitor.send(cid, "[" * 100).status_code == 200


@pytest.mark.parametrize("turn_id", [2**63, 2**64, -(2**63) - 1, 0, -1, 10**100])
def test_out_of_range_turn_ids_are_422(visitor, client, turn_id: int) -> None:
    cid = visitor.start()
    raw = json.dumps({"turn_id": turn_id, "helpful": True}).encode()
    response = _json(client, "POST", f"/api/conversations/{cid}/feedback", visitor.headers, raw)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_request"


def test_a_turn_id_at_the_top_of_the_range_is_just_not_found(visitor, client) -> None:
    cid = visitor.start()
    raw = json.dumps({"turn_id": 2**63 - 1, "helpful": True}).encode()
    assert _json(client, "POST", f"/api/conversations/{cid}/feedback", visitor.headers, raw).status_code == 404


MALFORMED_BODIES = [
    b"",
    b"null",
    b"[]",
    b'"text"',
    b"{",
    b'{"text": }',
    b'{"text": null}',
    b'{"text": 1}',
    b'{"text": ["a"]}',
    b'{"text": {"$ne": ""}}',
    b'{"text": "a", "text": 5}',
    b"\xff\xfe\xfd",
    b'{"text": "\\u0000"}',
    b'{"turn_id": "1", "helpful": "yes"}',
    b'{"turn_id": 1.5, "helpful": true}',
    b'{"turn_id": 1e400, "helpful": true}',
    b'{"turn_id": NaN, "helpful": true}',
    b'{"step": ""}',
    b'{"step": null}',
    b'{"step": "' + b"x" * 201 + b'"}',
]


@pytest.mark.parametrize("raw", MALFORMED_BODIES, ids=range(len(MALFORMED_BODIES)))
@pytest.mark.parametrize("path", ["messages", "messages/stream", "feedback", "steps"])
def test_malformed_bodies_never_500(visitor, client, raw: bytes, path: str) -> None:
    cid = visitor.start()
    response = _json(client, "POST", f"/api/conversations/{cid}/{path}", visitor.headers, raw)
    assert response.status_code < 500, (raw, path, response.status_code, response.text)
    assert response.headers["content-type"].startswith(("application/json", "text/event-stream"))


@pytest.mark.parametrize(
    "path",
    [
        "/api/conversations/..%2F..%2Fetc%2Fpasswd/messages",
        "/api/conversations/web:' OR 1=1 --/messages",
        "/api/conversations/web:%00%00/messages",
        "/api/conversations/" + "web:" + "A" * 5000 + "/messages",
        "/api/conversations/web:%F0%9F%98%80" + "A" * 28 + "/messages",
        "/api/conversations/%ED%A0%80/messages",
        "/api/../../etc/passwd",
        "/widget.js/../../pyproject.toml",
    ],
)
def test_path_tricks_are_404(visitor, client, path: str) -> None:
    response = client.get(path, headers=visitor.headers)
    assert response.status_code == 404, (path, response.status_code)


def test_sql_and_script_text_is_only_text(visitor, client, services) -> None:
    cid = visitor.start()
    hostile = "'); DROP TABLE turns; -- <script>alert(1)</script><img src=x onerror=alert(1)>"
    response = visitor.send(cid, hostile)
    assert response.status_code == 200
    history = visitor.history(cid).json()
    assert history["messages"][0]["text"] == hostile  # stored as is; the widget renders text, never HTML
    with services.store.engine.connect() as conn:
        assert conn.execute(schema.turns.select().limit(1)).first() is not None


def test_a_message_over_the_web_limit_is_refused_before_any_work(make_client, services) -> None:
    client = make_client(web_max_message_chars=2000)
    visitor = Visitor(client)
    cid = visitor.start()
    response = visitor.send(cid, "あ" * 2001)
    assert response.status_code == 413
    assert services.store.recent_turns(cid, 10) == [], "nothing stored, the engine never ran"


def test_a_worry_that_mentions_the_delete_words_does_not_delete(visitor) -> None:
    cid = visitor.start()
    assert visitor.send(cid, WORRY).status_code == 200
    reply = visitor.send(cid, "会社のシステムでデータを削除してしまい、上司に怒られて落ち込んでいます").json()
    assert reply["conversation_deleted"] is False
    assert len(visitor.history(cid).json()["messages"]) == 4


# ----- headers ---------------------------------------------------------------------------------------------------------
def test_every_response_carries_the_security_headers(visitor, client) -> None:
    cid = visitor.start()
    responses = {
        "demo": client.get("/"),
        "widget": client.get("/widget.js"),
        "health": client.get("/healthz"),
        "history": visitor.history(cid),
        "not_found": client.get("/nope"),
        "too_large": client.post("/api/conversations", headers=visitor.headers, content=b"x" * 100_000),
    }
    for name, response in responses.items():
        headers = response.headers
        assert "script-src 'self'" in headers["content-security-policy"], name
        assert "unsafe-inline" not in headers["content-security-policy"].split("script-src")[1].split(";")[0], name
        assert headers["x-content-type-options"] == "nosniff", name
        assert headers["x-frame-options"] == "DENY", name
        assert headers["referrer-policy"] == "no-referrer", name
        assert headers["server"] == "web", name
    assert responses["history"].headers["cache-control"] == "no-store"
    assert responses["too_large"].headers["cache-control"] == "no-store"
    assert responses["widget"].headers["cache-control"] == "public, max-age=300", "the public script stays cacheable"
    assert responses["widget"].headers["cross-origin-resource-policy"] == "cross-origin"
    assert b"<script>" not in responses["demo"].content, "no inline script on the demo page"
    stream = visitor.stream(cid, WORRY)
    assert stream.headers["cache-control"] == "no-store, no-transform"


def test_docs_are_off_in_production(make_client) -> None:
    dev = make_client()
    assert dev.get("/docs").status_code == 200
    assert "cdn.jsdelivr.net" in dev.get("/docs").headers["content-security-policy"]
    production = make_client(environment="production")
    assert production.get("/docs").status_code == 404
    assert production.get("/redoc").status_code == 404
    assert make_client(environment="production", api_docs=True).get("/docs").status_code == 200
    assert make_client(api_docs=False).get("/docs").status_code == 404


# ----- rate limits -----------------------------------------------------------------------------------------------------
def test_rotating_visitor_tokens_does_not_multiply_the_limit(make_client) -> None:
    # The attack that held 60 messages in 4.6 s: a fresh token (and conversation) for every few messages.
    client = make_client(web_rate_limit_visitor=2, web_rate_limit_ip_messages=6, web_rate_limit_ip_conversations=4)
    answered, refused = 0, 0
    for _ in range(10):
        visitor = Visitor(client)
        start = client.post("/api/conversations", headers=visitor.headers)
        if start.status_code == 429:
            refused += 1
            continue
        cid = start.json()["conversation_id"]
        for _ in range(2):
            response = visitor.send(cid, "こんにちは")
            answered += response.status_code == 200
            refused += response.status_code == 429
    assert answered == 6, "the per-IP message budget holds whatever the tokens"
    assert refused >= 6
    # Minting: a token only acts once it has started a conversation, and starts are bounded per IP.
    limited = client.post("/api/conversations", headers=Visitor(client).headers)
    assert limited.status_code == 429 and limited.json()["error"] == "rate_limited"
    assert "秒ほど待って" in limited.json()["message"]


def test_invalid_requests_are_counted_apart_and_never_lock_out_valid_ones(make_client) -> None:
    client = make_client(web_rate_limit_ip=20, web_rate_limit_ip_invalid=5)
    visitor = Visitor(client)
    cid = visitor.start()
    statuses = [client.get("/api/conversations/web:" + "A" * 32 + "/messages", headers=visitor.headers).status_code]
    statuses += [client.post("/api/conversations").status_code for _ in range(119)]  # no token: 401
    assert statuses[:5] == [404, 401, 401, 401, 401]
    assert set(statuses[5:]) == {429}, "past their own budget, invalid requests get 429 (no oracle for guessing)"
    # The 120 bad requests spent nothing of the valid budget: the same IP's visitor carries on.
    for _ in range(5):
        assert visitor.history(cid).status_code == 200
    assert visitor.send(cid, WORRY).status_code == 200


def test_access_logs_carry_no_conversation_id(visitor, client, caplog) -> None:
    caplog.set_level(logging.INFO, logger="bot.access")
    cid = visitor.start()
    visitor.history(cid)
    client.get(f"/api/conversations/{cid}/messages?x={cid}", headers=visitor.headers)
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.access"]
    assert any('"GET /api/conversations/{id}/messages" 200' in line for line in lines), lines
    assert all(cid not in line and cid.removeprefix("web:") not in line for line in lines)


# ----- deletion --------------------------------------------------------------------------------------------------------
def test_a_deleted_conversation_is_gone_from_the_sqlite_files(visitor, services, client) -> None:
    marker = "MARKER-web-8d2f71"
    store = services.store
    cid = visitor.start()
    reply = visitor.send(cid, f"{WORRY} {marker}").json()
    feedback = {"turn_id": reply["turn_id"], "helpful": False, "comment": f"{marker} コメント"}
    assert client.post(f"/api/conversations/{cid}/feedback", headers=visitor.headers, json=feedback).status_code == 201

    def holding() -> list[str]:
        names = [store.path.name + s for s in ("", "-wal", "-shm", "-journal")]
        paths = [store.path.with_name(n) for n in names]
        return [p.name for p in paths if p.exists() and marker.encode() in p.read_bytes()]

    assert holding(), "stored while the conversation lives"
    assert client.delete(f"/api/conversations/{cid}", headers=visitor.headers).status_code == 204
    assert holding() == [], "secure_delete zeroes the rows and the WAL is checkpointed and truncated"
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1


def test_the_step_checklist_is_bounded_per_conversation(make_client) -> None:
    client = make_client(web_rate_limit_ip=1000)
    visitor = Visitor(client)
    cid = visitor.start()
    url = f"/api/conversations/{cid}/steps"
    for n in range(130):
        response = client.post(url, headers=visitor.headers, json={"step": f"手順{n} " + "あ" * 190})
        assert response.status_code == 200
    done = response.json()["done_steps"]
    assert len(done) == 100 and done[-1].startswith("手順129") and done[0].startswith("手順30")
    assert visitor.history(cid).json()["done_steps"] == done
