"""The turn pipeline through the web API: safety first, commands only as whole messages or API calls."""

from __future__ import annotations

from webhelpers import Visitor

WORRY = "上司とうまくいかず、毎日職場に行くのがつらいです"
CRISIS_WITH_DELETE_WORDS = "上司に『記録は全部消しておけ』と言われて、もう死にたいです"


def test_crisis_mentioning_deleted_records_shows_help_lines_and_keeps_the_history(visitor: Visitor) -> None:
    conversation = visitor.start()
    assert visitor.send(conversation, WORRY).status_code == 200
    reply = visitor.send(conversation, CRISIS_WITH_DELETE_WORDS).json()
    assert reply["conversation_deleted"] is False
    answer = reply["answer"]
    assert answer["kind"] == "escalation" and answer["safety_tier"] == "escalation"
    assert answer["escalation"]["kind"] == "suicide" and answer["escalation"]["resources"]
    assert answer["action_plan"] == []
    history = visitor.history(conversation).json()["messages"]
    assert [m["text"] for m in history if m["role"] == "user"] == [WORRY, CRISIS_WITH_DELETE_WORDS]


def test_worry_containing_the_delete_words_is_not_deleted(visitor: Visitor) -> None:
    conversation = visitor.start()
    visitor.send(conversation, WORRY)
    reply = visitor.send(
        conversation, "取引先のデータを削除してしまって上司に怒られました。どう謝ればいいですか"
    ).json()
    assert reply["conversation_deleted"] is False
    assert len(visitor.history(conversation).json()["messages"]) == 4


def test_the_delete_command_and_the_delete_route_both_delete(visitor: Visitor) -> None:
    by_text = visitor.start()
    visitor.send(by_text, WORRY)
    reply = visitor.send(by_text, "データを削除してください").json()
    assert reply["conversation_deleted"] is True
    assert visitor.history(by_text).status_code == 404

    by_route = visitor.start()
    visitor.send(by_route, WORRY)
    response = visitor.client.delete(f"/api/conversations/{by_route}", headers=visitor.headers)
    assert response.status_code == 204
    assert visitor.history(by_route).status_code == 404


def test_escalations_show_in_metrics_by_kind(visitor: Visitor) -> None:
    conversation = visitor.start()
    visitor.send(conversation, "もう死にたい")
    metrics = visitor.client.get("/metrics").text
    assert 'safety_escalations_total{kind="suicide"' in metrics


def test_readiness_reports_the_learned_safety_check(client) -> None:
    body = client.get("/readyz").json()
    assert body["checks"]["safety"] == "ok"


def test_crisis_said_over_two_messages_is_caught(visitor: Visitor) -> None:
    conversation = visitor.start()
    first = visitor.send(conversation, "なんかもう疲れちゃった").json()["answer"]
    assert first["safety_tier"] != "escalation"
    second = visitor.send(conversation, "みんなへの手紙、書き終わった").json()["answer"]
    assert second["kind"] == "escalation" and second["escalation"]["kind"] == "suicide"
