"""The operators' console over HTTP on the real engine and store: sign-in (argon2, sessions, CSRF, lockout), the
queue, a conversation (reply, hand back, close), what a consultant may open (403), the audit trail, insights with CSV,
and hostile user text rendered harmless."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from consolehelpers import PASSWORD, Operator, add_operator
from webhelpers import Visitor

from bot.cli import main as cli_main
from bot.config import get_settings

MONDAY_NOON = datetime(2026, 12, 7, 12, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>「人と話したい」'


@pytest.fixture
def app(client, services):
    services.engine.handoffs.clock = lambda: MONDAY_NOON
    add_operator(services.store, "sato")
    add_operator(services.store, "boss", role="admin")
    return client.app


@pytest.fixture
def sato(app) -> Operator:
    operator = Operator(app, "sato")
    assert operator.login().status_code == 303
    return operator


@pytest.fixture
def boss(app) -> Operator:
    operator = Operator(app, "boss")
    assert operator.login().status_code == 303
    return operator


def audit(store, action: str) -> list:
    with store.desk_read() as desk:
        return [e for e in desk.audit_entries() if e.action == action]


def queued_visitor(client) -> tuple[Visitor, str]:
    visitor = Visitor(client)
    cid = visitor.start()
    assert visitor.send(cid, "上司が急に辞めて、引き継ぎ2週間で取引先をほぼ全部任されました").status_code == 200
    reply = visitor.send(cid, "人と話したい").json()
    assert reply["handoff"] == {"status": "waiting", "reception_open": True}
    return visitor, cid


# ----- sign-in -------------------------------------------------------------------------------------------------------
def test_pages_need_a_signed_in_operator(app) -> None:
    anonymous = Operator(app, "nobody")
    for path in ("/console", "/console/queue", "/console/c/web:x", "/console/insights", "/console/audit"):
        response = anonymous.page(path)
        assert response.status_code == 303 and response.headers["location"].endswith(
            ("/console/login", "/console/queue")
        ), path


def test_login_sets_a_session_and_wrong_passwords_fail_alike(app, services) -> None:
    operator = Operator(app, "sato")
    wrong = operator.login("wrong password!!")
    assert wrong.status_code == 401 and "ユーザー名またはパスワードが違う" in wrong.text
    unknown = Operator(app, "ghost").login()
    assert unknown.status_code == 401 and "ユーザー名またはパスワードが違う" in unknown.text
    ok = operator.login()
    assert ok.status_code == 303 and ok.headers["location"] == "/console/queue"
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert operator.page("/console/queue").status_code == 200
    with services.store.desk_read() as desk:
        stored = desk.operator("sato")
    assert stored is not None and stored.password_hash.startswith("$argon2id$") and PASSWORD not in stored.password_hash
    assert [e.operator for e in audit(services.store, "login_failed")] == ["ghost", "sato"]


def test_repeated_failures_lock_the_account_even_for_the_right_password(app, services) -> None:
    operator = Operator(app, "sato")
    for _ in range(5):
        assert operator.login("not the password").status_code == 401
    locked = operator.login()  # the right password, during the lockout
    assert locked.status_code == 401 and "一時的にログインできません" in locked.text
    # The same words as for a username that does not exist: a lockout does not tell which usernames are real.
    unknown = Operator(app, "ghost")
    for _ in range(6):
        ghost = unknown.login()
    assert ghost.status_code == 401 and _error(ghost.text) == _error(locked.text) == _error(operator.login("x").text)
    assert operator.page("/console/queue").status_code == 303
    assert audit(services.store, "login_locked")


def _error(html: str) -> str:
    found = re.search(r'<p class="error"[^>]*>(.*?)</p>', html, re.S)
    assert found is not None, "no error message on the page"
    return found.group(1)


def test_a_lockout_keeps_the_operators_open_session(app, sato, services) -> None:
    guesser = Operator(app, "sato")
    for _ in range(5):
        assert guesser.login("not the password").status_code == 401
    with services.store.desk_read() as desk:
        locked = desk.operator("sato")
    assert locked is not None and locked.locked_until is not None
    assert sato.page("/console/queue").status_code == 200, "someone guessing cannot sign the operator out"
    assert guesser.login().status_code == 401  # but no new sign-in until the lock ends


def test_sign_in_attempts_are_limited_per_ip(make_client, services) -> None:
    client = make_client(console_login_rate_limit=3, console_login_rate_window=60)
    add_operator(services.store, "sato")
    add_operator(services.store, "kato")
    for name in ("sato", "kato", "ghost"):  # across usernames: the limit is the IP's
        assert Operator(client.app, name).login("wrong password!!").status_code == 401
    limited = Operator(client.app, "sato").login()  # even the right password, once the IP is over the limit
    assert limited.status_code == 429 and "ログインの試行が多すぎます" in limited.text
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    with services.store.desk_read() as desk:
        sato = desk.operator("sato")
    assert sato is not None and sato.failed_logins == 1  # the refused attempt was never checked nor counted


def test_forms_without_the_csrf_token_are_refused(app, sato, client) -> None:
    _, cid = queued_visitor(client)
    for fields in ({}, {"csrf": "forged"}):
        response = sato.client.post(f"/console/c/{cid}/reply", data={"text": "こんにちは", **fields})
        assert response.status_code == 403
    assert sato.client.post("/console/logout", data={"csrf": "forged"}).status_code == 403
    # The login form has its own token, double-submitted in a cookie: a cross-site post has neither.
    outsider = Operator(app, "sato")
    forged = outsider.client.post("/console/login", data={"csrf": "x", "username": "sato", "password": PASSWORD})
    assert forged.status_code == 403


def test_a_disabled_operator_is_signed_out(app, sato, services) -> None:
    assert cli_main_code(["operators", "disable", "sato"], services) == 0
    assert sato.page("/console/queue").status_code == 303
    assert sato.login().status_code == 401


# ----- the queue and a conversation ----------------------------------------------------------------------------------
def test_a_consultant_replies_the_visitor_receives_it_and_the_bot_answers_after_hand_back(app, sato, client, services):
    visitor, cid = queued_visitor(client)
    queue = sato.page("/console/queue")
    assert queue.status_code == 200 and f"/console/c/{cid.replace(':', '%3A')}" in queue.text
    assert "本人の希望" in queue.text and "待機中" in queue.text

    held = visitor.send(cid, "お返事待っています").json()
    assert held["held"] is True and held["handoff"]["status"] == "waiting"
    view = sato.page(f"/console/c/{cid}")
    assert view.status_code == 200 and "お返事待っています" in view.text and "引き継ぎ" in view.text

    sent = sato.post(f"/console/c/{cid}/reply", f"/console/c/{cid}", text="担当の佐藤です。一緒に整理しましょう。")
    assert sent.status_code == 303 and sent.headers["location"].endswith("sent=stored")
    history = visitor.history(cid).json()
    consultant = [m for m in history["messages"] if m["role"] == "consultant"]
    assert [m["text"] for m in consultant] == ["担当の佐藤です。一緒に整理しましょう。"]
    assert history["handoff"]["status"] == "active"
    newer = visitor.client.get(
        f"/api/conversations/{cid}/messages?after={consultant[0]['id']}", headers=visitor.headers
    ).json()
    assert newer["messages"] == []
    assert "sato" in sato.page("/console/queue?tab=mine").text

    back = sato.post(f"/console/c/{cid}/hand-back", f"/console/c/{cid}", note="次は転職の相談")
    assert back.status_code == 303
    after = visitor.history(cid).json()
    assert after["handoff"]["status"] == "closed" and "またAIがお答えします" in after["messages"][-1]["text"]
    answered = visitor.send(cid, "同僚に無視されて陰口を言われています。職場で孤立しています").json()
    assert answered["held"] is False and answered["answer"]["kind"] == "advice"
    closed = sato.page("/console/queue?tab=closed").text
    assert "AIに戻した" in closed
    assert {e.action for e in audit(services.store, "reply") + audit(services.store, "hand_back")} == {
        "reply",
        "hand_back",
    }


def test_close_with_a_note(app, sato, boss, client, services) -> None:
    visitor, cid = queued_visitor(client)
    assert sato.post(f"/console/c/{cid}/take", f"/console/c/{cid}").status_code == 303
    closed = sato.post(f"/console/c/{cid}/close", f"/console/c/{cid}", note="解決済み")
    assert closed.status_code == 303 and closed.headers["location"] == "/console/queue?tab=mine&sent=stored"
    assert "送信しました" in sato.page(closed.headers["location"]).text
    assert sato.page(f"/console/c/{cid}").status_code == 403  # closed: an admin's to read, no longer the consultant's
    view = boss.page(f"/console/c/{cid}").text
    assert "解決済み" in view and "返信する" not in view  # closed: no more forms
    assert "担当者が今回のご相談を終了しました" in visitor.history(cid).json()["messages"][-1]["text"]
    again = boss.post(f"/console/c/{cid}/close", f"/console/c/{cid}", note="x")
    assert again.status_code == 409


def test_a_consultant_cannot_take_over_or_act_on_another_consultants_conversation(app, sato, boss, client, services):
    add_operator(services.store, "suzuki")
    suzuki = Operator(app, "suzuki")
    assert suzuki.login().status_code == 303
    visitor, cid = queued_visitor(client)
    assert sato.post(f"/console/c/{cid}/take", f"/console/c/{cid}").status_code == 303

    taken = suzuki.post(f"/console/c/{cid}/take", "/console/queue")
    assert taken.status_code == 409 and "another consultant (sato)" in taken.text
    for action, fields in (("reply", {"text": "代わりに答えます"}), ("hand-back", {}), ("close", {"note": "x"})):
        assert suzuki.post(f"/console/c/{cid}/{action}", "/console/queue", **fields).status_code == 403, action
    for path in (f"/console/c/{cid}", f"/console/c/{cid}/messages", f"/console/c/{cid}/version"):
        assert suzuki.page(path).status_code == 403, path
    assert [m["role"] for m in visitor.history(cid).json()["messages"]].count("consultant") == 0
    with services.store.desk_read() as desk:
        held = desk.handoff(cid)
    assert held is not None and held.status == "active" and held.assigned_to == "sato"
    assert not [e for e in audit(services.store, "take") if e.operator == "suzuki"]

    # An admin reads and writes on it without taking it over; the consultant keeps it.
    assert boss.page(f"/console/c/{cid}").status_code == 200
    helped = boss.post(f"/console/c/{cid}/reply", f"/console/c/{cid}", text="管理者から補足します")
    assert helped.status_code == 303
    with services.store.desk_read() as desk:
        held = desk.handoff(cid)
    assert held is not None and held.assigned_to == "sato"
    assert sato.post(f"/console/c/{cid}/hand-back", f"/console/c/{cid}").status_code == 303


def test_a_consultant_opens_only_queued_conversations_and_every_opening_is_audited(app, sato, client, services):
    visitor = Visitor(client)
    private = visitor.start()
    visitor.send(private, "上司が急に辞めて困っています")
    assert sato.page(f"/console/c/{private}").status_code == 403
    assert sato.page(f"/console/c/{private}/messages").status_code == 403
    assert sato.page("/console/c/web:doesnotexist").status_code == 403
    assert sato.page("/console/c/" + "x" * 300).status_code == 404

    _, cid = queued_visitor(client)
    assert sato.page(f"/console/c/{cid}").status_code == 200
    assert sato.page(f"/console/c/{cid}").status_code == 200
    openings = [(e.operator, e.conversation_id) for e in audit(services.store, "open")]
    assert openings == [("sato", cid), ("sato", cid)]
    # The live refresh of an open page is not a new opening, but reading the history is audited all the same.
    assert sato.page(f"/console/c/{cid}/messages").status_code == 200
    assert len(audit(services.store, "open")) == 2
    assert [(e.operator, e.conversation_id) for e in audit(services.store, "refresh")] == [("sato", cid)]


def test_a_nul_character_in_a_form_is_refused_not_a_server_error(app, sato, client, services) -> None:
    _, cid = queued_visitor(client)
    nul_login = Operator(app, "sa\x00to").login()
    assert nul_login.status_code == 422
    assert sato.post(f"/console/c/{cid}/reply", f"/console/c/{cid}", text="こんにちは\x00").status_code == 422
    assert sato.post(f"/console/c/{cid}/close", f"/console/c/{cid}", note="メモ\x00").status_code == 422
    assert sato.page("/console/c/web:%00x").status_code == 404
    with services.store.desk_read() as desk:
        found = desk.handoff(cid)
    assert found is not None and found.status == "waiting"  # nothing was acted on
    assert not audit(services.store, "reply")


def test_a_users_deletion_removes_the_conversation_from_the_console(app, sato, client) -> None:
    visitor, cid = queued_visitor(client)
    assert sato.page(f"/console/c/{cid}").status_code == 200
    assert visitor.client.delete(f"/api/conversations/{cid}", headers=visitor.headers).status_code == 204
    assert sato.page(f"/console/c/{cid}").status_code == 403
    assert cid not in sato.page("/console/queue").text


def test_the_queue_reports_a_new_version_when_it_changes(app, sato, client) -> None:
    before = sato.page("/console/queue/version").json()["version"]
    visitor, cid = queued_visitor(client)
    middle = sato.page("/console/queue/version").json()["version"]
    assert middle != before
    visitor.send(cid, "まだですか")
    assert sato.page("/console/queue/version").json()["version"] != middle
    table = sato.page("/console/queue/table?tab=waiting")
    assert table.status_code == 200 and "<html" not in table.text and "まだですか" not in table.text  # summary only


def test_hostile_user_text_is_escaped_on_every_console_page(app, sato, boss, client, services) -> None:
    visitor = Visitor(client)
    cid = visitor.start()
    visitor.send(cid, HOSTILE)  # unsure: the insights show it among the knowledge gaps
    visitor.send(cid, "人と話したい")
    visitor.send(cid, HOSTILE + "まだですか")
    pages = [
        sato.page("/console/queue"),
        sato.page("/console/queue/table"),
        sato.page(f"/console/c/{cid}"),
        sato.page(f"/console/c/{cid}/messages"),
        boss.page("/console/insights"),
    ]
    for page in pages:
        assert page.status_code == 200
        assert "<script>alert" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in pages[2].text
    headers = pages[2].headers
    assert (
        "form-action 'self'" in headers["content-security-policy"]
        and "script-src 'self'" in headers["content-security-policy"]
    )
    assert "unsafe-inline" not in headers["content-security-policy"] and headers["cache-control"] == "no-store"


# ----- admins ----------------------------------------------------------------------------------------------------------
def test_insights_audit_and_csv_are_for_admins(app, sato, boss, client, services) -> None:
    visitor, cid = queued_visitor(client)
    visitor.send(cid, '=HYPERLINK("http://evil")')  # held; text never reaches the CSV counts
    for path in ("/console/insights", "/console/audit", "/console/insights/daily.csv"):
        assert sato.page(path).status_code == 403
    page = boss.page("/console/insights?days=7")
    assert page.status_code == 200 and "日別のメッセージ数" in page.text
    daily = boss.page("/console/insights/daily.csv?days=7")
    assert daily.status_code == 200 and daily.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(daily.text.lstrip("\ufeff"))))
    web = [r for r in rows if r["channel"] == "web"]
    assert len({r["day"] for r in rows}) == 7 and sum(int(r["messages"]) for r in web) >= 3
    assert sum(int(r["conversations"]) for r in web) >= 1
    assert boss.page("/console/insights/nothing.csv").status_code == 404
    assert audit(services.store, "export")
    assert "export" in boss.page("/console/audit").text


def test_unsure_messages_are_grouped_as_knowledge_gaps(app, boss, client) -> None:
    visitor = Visitor(client)
    for text in ("仕事がつらい", "仕事がしんどい", "どうしたらいいかわからない"):
        visitor.send(visitor.start(), text)
    gaps = boss.page("/console/insights/gaps.csv")
    rows = list(csv.DictReader(io.StringIO(gaps.text.lstrip("\ufeff"))))
    assert sum(int(r["messages"]) for r in rows) == 3
    assert any("仕事がつらい" in r["examples"] and "仕事がしんどい" in r["examples"] for r in rows)


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted() -> None:
    from bot.console.insights import to_csv

    out = to_csv(["examples"], [["=1+1"], ["@SUM(A1)"], ["普通の相談"]])
    assert out.splitlines()[1:] == ["'=1+1", "'@SUM(A1)", "普通の相談"]


# ----- the CLI ---------------------------------------------------------------------------------------------------------
def cli_main_code(argv: list[str], services, stdin: str = "") -> int:
    import sys

    url = str(services.store.engine.url.render_as_string(hide_password=False))
    old_stdin = sys.stdin
    mp = pytest.MonkeyPatch()
    try:
        mp.setenv("DATABASE_URL", url)
        get_settings.cache_clear()
        sys.stdin = io.StringIO(stdin)
        try:
            cli_main(argv)
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0
    finally:
        sys.stdin = old_stdin
        mp.undo()
        get_settings.cache_clear()


def test_the_first_operator_is_created_with_the_cli(app, services) -> None:
    code = cli_main_code(
        ["operators", "add", "tanaka", "--role", "admin", "--password-stdin"], services, PASSWORD + "\n"
    )
    assert code == 0
    assert Operator(app, "tanaka").login().status_code == 303
    assert cli_main_code(["operators", "add", "tanaka", "--password-stdin"], services, PASSWORD + "\n") == 1
    assert cli_main_code(["operators", "add", "short", "--password-stdin"], services, "short\n") == 2
    assert cli_main_code(["operators", "disable", "nobody"], services) == 1


# ----- PostgreSQL ------------------------------------------------------------------------------------------------------
@pytest.mark.postgres
def test_the_console_flow_on_postgresql(app_settings, searcher, pg_session_url) -> None:
    """The same queue, reply, hand-back and audit on PostgreSQL (the store several workers share)."""
    import psycopg
    from fastapi.testclient import TestClient
    from pgfixtures import TABLES, _conninfo

    from bot.api.main import create_app
    from bot.dialogue.factory import build_engine

    with psycopg.connect(_conninfo(pg_session_url), autocommit=True) as conn:
        conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY")
    settings = app_settings.model_copy(update={"database_url": pg_session_url})
    services = build_engine(settings, searcher=searcher)
    services.engine.handoffs.clock = lambda: MONDAY_NOON
    try:
        add_operator(services.store, "pg-sato")
        with TestClient(create_app(settings, services=services)) as client:
            visitor, cid = queued_visitor(client)
            sato = Operator(client.app, "pg-sato")
            assert sato.login().status_code == 303
            assert cid.replace(":", "%3A") in sato.page("/console/queue").text
            assert visitor.send(cid, "まだですか").json()["held"] is True
            sato.post(f"/console/c/{cid}/reply", f"/console/c/{cid}", text="お待たせしました")
            assert [m["text"] for m in visitor.history(cid).json()["messages"] if m["role"] == "consultant"] == [
                "お待たせしました"
            ]
            # PostgreSQL stores no NUL in text: a form with one is refused (422), not a server error
            assert Operator(client.app, "pg\x00sato").login().status_code == 422
            assert sato.post(f"/console/c/{cid}/reply", f"/console/c/{cid}", text="a\x00b").status_code == 422
            assert sato.post(f"/console/c/{cid}/close", f"/console/c/{cid}", note="a\x00b").status_code == 422
            assert sato.page("/console/c/line:%00x").status_code == 404
            sato.post(f"/console/c/{cid}/hand-back", f"/console/c/{cid}")
            assert visitor.send(cid, "同僚に無視されて陰口を言われています").json()["held"] is False
            with services.store.desk_read() as desk:
                actions = [e.action for e in desk.audit_entries(conversation_id=cid)]
            assert {"open", "reply", "hand_back"} <= set(actions)
    finally:
        services.store.close()
