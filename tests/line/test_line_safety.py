"""The turn pipeline through the LINE webhook (real SDK, fake LINE API): help lines first, nothing deleted."""

from __future__ import annotations

import line_events as ev
from conftest import LineApp

WORRY = "上司とうまくいかず、毎日職場に行くのがつらいです"
CRISIS_WITH_DELETE_WORDS = "上司に『記録は全部消しておけ』と言われて、もう死にたいです"


def texts_of(delivery) -> str:
    return "\n".join(m.get("text", "") for m in delivery.messages if m["type"] == "text")


def tel_buttons(delivery) -> list[str]:
    items = delivery.messages[-1].get("quickReply", {}).get("items", [])
    return [i["action"]["uri"] for i in items if i["action"]["type"] == "uri" and i["action"]["uri"].startswith("tel:")]


def test_crisis_with_delete_words_gets_help_lines_and_loses_nothing(line_app: LineApp) -> None:
    user = ev.user_id()
    line_app.say(user, WORRY)
    line_app.wait_for(user, 1)
    line_app.say(user, CRISIS_WITH_DELETE_WORDS)
    deliveries = line_app.wait_for(user, 2)
    crisis = deliveries[1]
    assert all(m["type"] == "text" for m in crisis.messages), "plain text, no advice bubble"
    assert "削除しました" not in texts_of(crisis)
    assert tel_buttons(crisis), "help lines as tel: buttons"
    line_app.wait_idle()
    turns = line_app.store.recent_turns(f"line:user:{user}", 50)
    assert [t.text for t in turns if t.role == "user"] == [WORRY, CRISIS_WITH_DELETE_WORDS]


def test_whole_message_delete_command_deletes(line_app: LineApp) -> None:
    user = ev.user_id()
    line_app.say(user, WORRY)
    line_app.wait_for(user, 1)
    line_app.say(user, "データを削除")
    deliveries = line_app.wait_for(user, 2)
    assert "削除しました" in texts_of(deliveries[1])
    line_app.wait_idle()
    assert line_app.store.recent_turns(f"line:user:{user}", 50) == []


def test_crisis_said_over_two_messages_is_caught(line_app: LineApp) -> None:
    user = ev.user_id()
    line_app.say(user, "なんかもう疲れちゃった")
    line_app.wait_for(user, 1)
    line_app.say(user, "みんなへの手紙、書き終わった")
    second = line_app.wait_for(user, 2)[1]
    assert all(m["type"] == "text" for m in second.messages)
    assert any(uri.startswith("tel:0120") for uri in tel_buttons(second))
