"""POST /line/webhook: the order of checks, what is stored, dedupe, and a fast 200 with the work in the background."""

from __future__ import annotations

import json
import logging
import time

import line_events as ev
from conftest import SECRET, LineApp, line_overrides
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bot.api.main import create_app
from bot.dialogue.factory import build_engine
from bot.store.schema import inbox


def inbox_rows(store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(inbox)).scalar_one())


def test_without_credentials_the_webhook_is_503_and_the_rest_works(app_settings, services) -> None:
    with TestClient(create_app(app_settings, services)) as client:
        response = client.post("/line/webhook", content=b"{}", headers={"X-Line-Signature": "x"})
        assert response.status_code == 503
        assert response.json()["error"] == "line_not_configured"
        assert "LINE_CHANNEL_SECRET" in response.json()["message"]
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200, "no LINE is not a readiness failure"


def test_bad_or_missing_signature_is_400_and_nothing_is_stored(line_app: LineApp) -> None:
    before = inbox_rows(line_app.store)
    event = ev.text(ev.user_id(), "こんにちは", reply_token="t")
    raw = ev.body(event)
    for signature in ["", "bm90IGEgc2lnbmF0dXJl", ev.sign(raw, SECRET + "x"), ev.sign(raw + b" ", SECRET)]:
        response = line_app.post(raw=raw, signature=signature)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_signature"
    response = line_app.client.post("/line/webhook", content=raw)  # no header at all
    assert response.status_code == 400
    # Garbage with a bad signature is refused for the signature, before any parsing.
    response = line_app.post(raw=b"not json", signature="abc")
    assert response.json()["error"] == "invalid_signature"
    assert inbox_rows(line_app.store) == before
    time.sleep(0.3)
    assert line_app.fake.calls == []


def test_body_over_one_megabyte_is_413(line_app: LineApp) -> None:
    before = inbox_rows(line_app.store)
    big = ev.body(ev.text(ev.user_id(), "あ" * 360_000, reply_token="t"), validate=False)
    assert len(big) > 1024 * 1024
    response = line_app.post(raw=big)
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"

    # Without a Content-Length (chunked upload) the limit holds too.
    def chunks():
        for i in range(0, len(big), 65536):
            yield big[i : i + 65536]

    response = line_app.client.post(
        "/line/webhook", content=chunks(), headers={"X-Line-Signature": ev.sign(big, SECRET)}
    )
    assert response.status_code == 413
    assert inbox_rows(line_app.store) == before


def test_not_json_or_not_the_webhook_shape_is_400(line_app: LineApp) -> None:
    before = inbox_rows(line_app.store)
    cases = {
        b"not json": "invalid_json",
        b"\xff\xfe\x00": "invalid_json",
        b"[]": "invalid_webhook",
        b'{"destination": "U0"}': "invalid_webhook",
        b'{"destination": "U0", "events": {}}': "invalid_webhook",
        b'{"events": []}': "invalid_webhook",
    }
    for raw, code in cases.items():
        response = line_app.post(raw=raw)
        assert response.status_code == 400, raw
        body = response.json()
        assert body["error"] == code and body["message"], raw
    assert inbox_rows(line_app.store) == before


def test_console_verification_request_is_200(app_settings, services, fake_line, fixtures_dir) -> None:
    # The official vector is LINE's own verification request (events: []) signed with its channel secret.
    vectors = json.loads((fixtures_dir / "line/line-developers-docs/signature-test-vectors.json").read_text())
    vector = vectors["vectors"][0]
    settings = app_settings.model_copy(update=line_overrides(fake_line))
    settings.line_channel_secret = type(settings.line_channel_secret)(vector["channel_secret"])
    with TestClient(create_app(settings, services)) as client:
        response = client.post(
            "/line/webhook", content=vector["body"].encode(), headers={"X-Line-Signature": vector["x_line_signature"]}
        )
        assert response.status_code == 200
        assert response.json() | {"request_id": None} == {
            "status": "ok",
            "request_id": None,
            "accepted": 0,
            "duplicates": 0,
            "skipped": 0,
            "rejected": 0,
        }


def test_acknowledged_at_once_and_answered_in_the_background(line_app: LineApp) -> None:
    user = ev.user_id()
    line_app.fake.fail("loading", None, delay=1.0)  # whatever LINE does later cannot delay the acknowledgement
    event = ev.text(
        user,
        "転職すべきか迷っています。今の会社に残るべきでしょうか",
        reply_token=line_app.fake.issue_reply_token(user),
    )
    started = time.perf_counter()
    response = line_app.post(event)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    assert response.headers["X-Request-Id"] == response.json()["request_id"]
    assert elapsed < 1.0, f"acknowledged in {elapsed:.2f} s (LINE waits 2 s at most)"
    assert line_app.fake.delivered_to(user) == [], "the answer comes after the 200"
    line_app.wait_for(user, 1)


def test_redelivered_events_are_answered_once(line_app: LineApp) -> None:
    user = ev.user_id()
    event = ev.text(user, "上司とうまくいきません", reply_token=line_app.fake.issue_reply_token(user))
    assert line_app.post(event).json()["accepted"] == 1
    redelivered = dict(event, deliveryContext={"isRedelivery": True})
    body = line_app.post(redelivered).json()
    assert body["accepted"] == 0 and body["duplicates"] == 1
    line_app.wait_for(user, 1)
    line_app.wait_idle()
    # Still a duplicate once processed (the id outlives the payload).
    assert line_app.post(redelivered).json()["duplicates"] == 1
    time.sleep(0.3)
    assert len(line_app.fake.delivered_to(user)) == 1


def test_dedupe_holds_across_server_processes_sharing_a_database(line_app: LineApp, searcher) -> None:
    line_settings = line_app.settings
    other_services = build_engine(line_settings, searcher=searcher)  # another process's store on the same file
    try:
        with TestClient(create_app(line_settings, other_services)) as other_client:
            other = LineApp(other_client, line_settings, other_services, line_app.fake)
            users = [ev.user_id() for _ in range(4)]
            events = [
                ev.text(u, "残業が多くて疲れています", reply_token=line_app.fake.issue_reply_token(u)) for u in users
            ]
            raw = ev.body(*events)
            first = line_app.post(raw=raw).json()
            second = other.post(raw=raw).json()
            assert first["accepted"] + second["accepted"] == 4
            assert first["duplicates"] + second["duplicates"] == 4
            for user in users:
                line_app.wait_for(user, 1)
            line_app.wait_idle()
            other.wait_idle()
            time.sleep(0.3)
            assert all(len(line_app.fake.delivered_to(u)) == 1 for u in users)
    finally:
        other_services.store.close()


def test_unknown_and_unparseable_events_are_rejected_and_logged(line_app: LineApp, caplog) -> None:
    user = ev.user_id()
    good = ev.text(user, "こんにちは", reply_token=line_app.fake.issue_reply_token(user))
    no_quote = ev.text(ev.user_id(), "quoteToken のない text", reply_token="t2")
    del no_quote["message"]["quoteToken"]
    no_context = ev.follow(ev.user_id(), reply_token="t3")
    del no_context["deliveryContext"]
    new_type = dict(ev.unfollow(ev.user_id()), type="greatNewFeature")
    events = [new_type, no_quote, "not an object", {"no": "type"}, no_context, good]
    caplog.set_level(logging.INFO, logger="bot.channels.line")
    response = line_app.post(*events, validate=False)
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["skipped"], body["rejected"]) == (1, 0, 5)
    rejected = [r for r in caplog.records if "rejected event" in r.getMessage()]
    assert len(rejected) == 5
    assert all(body["request_id"] in r.getMessage() for r in rejected), "logged with the request id"
    line_app.wait_for(user, 1)


def test_message_text_is_never_logged_at_info(line_app: LineApp, caplog) -> None:
    caplog.set_level(logging.INFO)
    user = ev.user_id()
    secret_words = "秘密の相談ですが上司に毎日怒鳴られています"
    line_app.say(user, secret_words)
    line_app.wait_for(user, 1)
    line_app.wait_idle()
    for record in caplog.records:
        if record.levelno >= logging.INFO:
            assert "秘密の相談" not in record.getMessage()
