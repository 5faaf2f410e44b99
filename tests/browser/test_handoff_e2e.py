"""End to end: a user on LINE (the fake LINE API, the real line-bot-sdk) and a user in the widget (Chromium) ask for a
person; a consultant signs in to the console in Chromium, sees both arrive in the queue without reloading, replies to
each, and each user receives the reply on their channel; the consultant hands back and the bot answers again."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import expect
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "line"))
import line_events as ev
from fake_line_api import FakeLine, running_fake
from live_server import LiveServer

from bot.api.main import create_app
from bot.console.auth import Auth

pytestmark = pytest.mark.browser

W = "career-partner-chat"
SECRET = "0123456789abcdef0123456789abcdef"
TOKEN = "test-access-token"
PASSWORD = "consultant password 2026"
MONDAY_NOON = datetime(2026, 12, 7, 12, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
WORRY = "上司が急に辞めて、引き継ぎ2週間で取引先をほぼ全部任されました"
OTHER_WORRY = "同僚に無視されて陰口を言われています。職場で孤立しています"


@pytest.fixture(scope="module")
def fake_line() -> Iterator[FakeLine]:
    with running_fake(TOKEN) as fake:
        yield fake


@pytest.fixture(scope="module")
def server(web_services, fake_line) -> Iterator[tuple[LiveServer, Any]]:
    settings, services = web_services
    settings = settings.model_copy(
        update={
            "line_channel_secret": SecretStr(SECRET),
            "line_channel_access_token": SecretStr(TOKEN),
            "line_api_base_url": fake_line.url,
            "line_request_timeout": 2.0,
            "line_retry_base_seconds": 0.01,
            "line_inbox_poll_seconds": 0.1,
            "console_poll_seconds": 1.0,
        }
    )
    services.engine.handoffs.clock = lambda: MONDAY_NOON
    Auth(services.store).add_operator("sato", PASSWORD, "consultant")
    with LiveServer(create_app(settings, services=services)) as live:
        yield live, services


def line_says(live: LiveServer, fake: FakeLine, user: str, text: str) -> None:
    body = ev.body(ev.text(user, text, reply_token=fake.issue_reply_token(user)))
    response = httpx.post(
        f"{live.url}/line/webhook",
        content=body,
        headers={"X-Line-Signature": ev.sign(body, SECRET), "Content-Type": "application/json"},
    )
    assert response.status_code == 200


def line_texts(fake: FakeLine, user: str) -> list[str]:
    return ["\n".join(m.get("text", m.get("altText", "")) for m in d.messages) for d in fake.delivered_to(user)]


def wait_line(fake: FakeLine, user: str, count: int) -> list[str]:
    assert fake.wait_for(lambda: len(fake.delivered_to(user)) >= count, 60), line_texts(fake, user)
    return line_texts(fake, user)


def widget_send(page: Any, text: str) -> None:
    box = page.locator(f"{W} #cp-input")
    box.fill(text)
    box.press("Enter")


def test_line_and_widget_users_reach_a_consultant_and_come_back_to_the_bot(server, fake_line, new_page, artifacts):
    live, services = server
    # The consultant signs in first and watches the queue.
    console = new_page()
    console.goto(live.url + "/console")
    console.fill("input[name=username]", "sato")
    console.fill("input[name=password]", PASSWORD)
    console.click("button[type=submit]")
    expect(console.locator("h1")).to_have_text("相談キュー")
    expect(console.locator(".empty")).to_be_visible()

    # A widget user asks for a person.
    widget = new_page()
    widget.goto(live.url + "/")
    widget.locator(f"{W} .launcher").click()
    widget.locator(f"{W} .notice-ok").click()
    widget_send(widget, WORRY)
    expect(widget.locator(f"{W} .msg.bot").last.locator("h3", has_text="現状分析")).to_be_visible(timeout=60_000)
    widget_send(widget, "人と話したい")
    expect(widget.locator(f"{W} .msg.bot").last).to_contain_text("おつなぎします", timeout=60_000)
    widget_send(widget, "取引先への最初の連絡が不安です")
    expect(widget.locator(f"{W} .held")).to_have_text("担当者に届きました")

    # A LINE user does the same.
    user = ev.user_id()
    line_says(live, fake_line, user, WORRY)
    wait_line(fake_line, user, 1)
    line_says(live, fake_line, user, "人と話したい")
    assert "おつなぎします" in wait_line(fake_line, user, 2)[-1]

    # Both appear in the open queue without a reload (the page asks the database for news).
    rows = console.locator("table.queue tbody tr")
    expect(rows).to_have_count(2, timeout=15_000)
    expect(console.locator("table.queue")).to_contain_text("LINE")
    expect(console.locator("table.queue")).to_contain_text("Web")
    artifacts(console, "console-01-queue")

    # Reply to the widget user: it shows up in their panel.
    console.locator("table.queue tbody tr", has_text="Web").locator("a").click()
    expect(console.locator(".history")).to_contain_text("取引先への最初の連絡が不安です")
    console.fill("#reply-text", "担当の佐藤です。まず取引先の一覧から一緒に整理しましょう。")
    console.click("form.reply button")
    expect(console.locator(".ok")).to_contain_text("送信しました")
    expect(widget.locator(f"{W} .msg.consultant")).to_contain_text("担当の佐藤です", timeout=15_000)
    artifacts(widget, "widget-consultant-reply")
    # Hand back: the widget user is told, and the bot answers the next message.
    console.click("form.end:has(button:text('AIに戻す')) button")
    expect(widget.locator(f"{W} .msg.bot").last).to_contain_text("またAIがお答えします", timeout=15_000)
    widget_send(widget, OTHER_WORRY)
    expect(widget.locator(f"{W} .msg.bot").last.locator("h3", has_text="現状分析")).to_be_visible(timeout=60_000)

    # Reply to the LINE user: pushed with a retry key.
    console.goto(live.url + "/console/queue")
    console.locator("table.queue tbody tr", has_text="LINE").locator("a").click()
    console.fill("#reply-text", "担当の佐藤です。LINEでお返事しますね。")
    console.click("form.reply button")
    expect(console.locator(".ok")).to_contain_text("LINEに送信しました")
    pushed = fake_line.delivered_to(user)[-1]
    assert pushed.method == "push" and pushed.retry_key
    assert line_texts(fake_line, user)[-1] == "【キャリアコンサルタントより】\n担当の佐藤です。LINEでお返事しますね。"
    console.click("form.end:has(button:text('AIに戻す')) button")
    assert "またAIがお答えします" in wait_line(fake_line, user, 4)[-1]
    line_says(live, fake_line, user, OTHER_WORRY)
    assert "現状分析" in wait_line(fake_line, user, 5)[-1]

    # Both are closed now, and every opening was audited.
    console.goto(live.url + "/console/queue?tab=closed")
    expect(console.locator("table.queue tbody tr")).to_have_count(2)
    with services.store.desk_read() as desk:
        opened = [e for e in desk.audit_entries() if e.action == "open" and e.operator == "sato"]
    assert {e.conversation_id for e in opened} >= {f"line:user:{user}"}
    assert fake_line.problems == []
