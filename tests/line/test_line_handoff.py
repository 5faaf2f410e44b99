"""Handoff on LINE, against the fake LINE API with the real line-bot-sdk: the user asks for a person, the bot stays
silent while a consultant holds the conversation (help lines still go out), the consultant's replies are pushed with a
retry key (a failed push is retried with the same key and delivered once), and after the hand-back the bot answers."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import line_events as ev
import pytest
from conftest import LineApp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from consolehelpers import Operator, add_operator

MONDAY_NOON = datetime(2026, 12, 7, 12, 0, tzinfo=ZoneInfo("Asia/Tokyo"))


def texts_of(delivery) -> str:
    return "\n".join(m.get("text", m.get("altText", "")) for m in delivery.messages)


@pytest.fixture
def consultant(line_app: LineApp) -> Operator:
    line_app.services.engine.handoffs.clock = lambda: MONDAY_NOON
    with line_app.store.desk_read() as desk:
        exists = desk.operator("line-sato") is not None
    if not exists:
        add_operator(line_app.store, "line-sato")
    operator = Operator(line_app.client, "line-sato")
    assert operator.login().status_code == 303
    return operator


def test_a_consultant_takes_over_on_line_and_hands_back(line_app: LineApp, consultant: Operator) -> None:
    user = ev.user_id()
    cid = f"line:user:{user}"
    line_app.say(user, "上司が急に辞めて、引き継ぎ2週間で取引先をほぼ全部任されました")
    line_app.wait_for(user, 1)
    line_app.say(user, "人と話したい")
    queued = line_app.wait_for(user, 2)[-1]
    assert "おつなぎします" in texts_of(queued) and "受付時間内" in texts_of(queued)

    # Held: the message reaches the console, nothing reaches the user.
    line_app.say(user, "取引先への最初の連絡が不安です")
    line_app.wait_idle()
    assert len(line_app.fake.delivered_to(user)) == 2
    view = consultant.page(f"/console/c/{cid}")
    assert view.status_code == 200 and "取引先への最初の連絡が不安です" in view.text

    # Safety still answers while a consultant holds it.
    line_app.say(user, "もう死にたい")
    help_lines = line_app.wait_for(user, 3)[-1]
    assert "0120" in texts_of(help_lines) or "いのちの電話" in texts_of(help_lines)

    # The consultant's reply is pushed; LINE fails once and the retry uses the same key.
    line_app.fake.fail("push", 500, times=1)
    sent = consultant.post(
        f"/console/c/{cid}/reply", f"/console/c/{cid}", text="担当の佐藤です。一緒に整理しましょう。"
    )
    assert sent.status_code == 303 and sent.headers["location"].endswith("sent=sent")
    pushed = line_app.wait_for(user, 4)[-1]
    assert pushed.method == "push" and pushed.retry_key
    assert texts_of(pushed) == "【キャリアコンサルタントより】\n担当の佐藤です。一緒に整理しましょう。"
    keys = [
        {k.lower(): v for k, v in c.headers.items()}.get("x-line-retry-key")
        for c in line_app.fake.calls
        if c.endpoint == "push"
    ]
    assert keys.count(pushed.retry_key) == 2  # the failed attempt and the retry: one key, one delivery

    # Hand back: the user is told, and the bot answers the next message again.
    consultant.post(f"/console/c/{cid}/hand-back", f"/console/c/{cid}")
    notice = line_app.wait_for(user, 5)[-1]
    assert "またAIがお答えします" in texts_of(notice)
    line_app.say(user, "同僚に無視されて陰口を言われています。職場で孤立しています")
    answer = line_app.wait_for(user, 6)[-1]
    assert answer.method == "reply" and "現状分析" in texts_of(answer)


def test_blocking_the_bot_takes_the_conversation_off_the_console(line_app: LineApp, consultant: Operator) -> None:
    user = ev.user_id()
    cid = f"line:user:{user}"
    line_app.say(user, "人と話したい")
    line_app.wait_for(user, 1)
    assert consultant.page(f"/console/c/{cid}").status_code == 200
    line_app.post(ev.unfollow(user))  # blocking deletes the user's data
    line_app.wait_idle()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and consultant.page(f"/console/c/{cid}").status_code != 403:
        time.sleep(0.1)
    assert consultant.page(f"/console/c/{cid}").status_code == 403
