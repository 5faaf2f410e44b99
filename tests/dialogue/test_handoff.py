"""Handoff to a career consultant through the engine, on the real library, index and store: asking for a person,
the bot's silence while a consultant holds the conversation (safety still answers), replies, hand-back, and the
conversations queued on their own (a crisis, unsure answers, a "not helpful")."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.handoff.desk import HeldByAnother, NotInQueue

JST = ZoneInfo("Asia/Tokyo")
MONDAY_NOON = datetime(2026, 12, 7, 12, 0, tzinfo=JST)
SATURDAY_NIGHT = datetime(2026, 12, 12, 23, 0, tzinfo=JST)
WORRY = "営業です。上司が急に辞めて、引き継ぎ2週間で取引先をほぼ全部任されました"


def handoff(engine, cid):
    with engine.store.desk_read() as desk:
        return desk.handoff(cid)


@pytest.fixture
def at_noon(engine):
    engine.handoffs.clock = lambda: MONDAY_NOON
    return engine


def test_asking_for_a_person_queues_the_conversation_and_the_bot_goes_quiet(at_noon) -> None:
    engine = at_noon
    first = engine.handle("web:h", WORRY).answer
    assert first.topic == "handover"
    asked = engine.handle("web:h", "人と話したい")
    assert not asked.held
    text = asked.answer.text
    assert "キャリアコンサルタント" in text and "受付時間内（月〜金 10:00〜19:00）" in text
    assert "AIとの相談に戻る" in asked.answer.follow_ups
    assert len(asked.answer.sources) >= 3  # the contract: every answer carries the retrieval ranking
    queued = handoff(engine, "web:h")
    assert queued.status == "waiting" and queued.reason == "user" and queued.topic == "handover"
    assert "引き継ぎ" in queued.summary

    # Waiting for a person: the message is stored for the consultant, the bot says nothing.
    held = engine.handle("web:h", "顧客にはどう説明すればいいですか", channel_message_id="m1")
    assert held.held and held.turn_id == 0
    again = engine.handle("web:h", "顧客にはどう説明すればいいですか", channel_message_id="m1")  # a redelivery
    assert again.held
    turns = engine.store.recent_turns("web:h", 50)
    assert [t.role for t in turns][-1] == "user" and sum(t.channel_message_id == "m1" for t in turns) == 1
    assert handoff(engine, "web:h").unread == 1

    # The consultant answers, then hands back: the bot answers again.
    delivery = engine.handoffs.reply("web:h", "sato", "担当の佐藤です。まず取引先の一覧から整理しましょう。")
    assert delivery.retry_key and delivery.text.startswith("担当の佐藤です")
    assert handoff(engine, "web:h").status == "active"
    assert engine.handle("web:h", "ありがとうございます").held
    back = engine.handoffs.hand_back("web:h", "sato", note="取引先整理を助言")
    assert "またAIがお答えします" in back.text
    assert handoff(engine, "web:h").outcome == "handed_back"
    answered = engine.handle("web:h", "同僚に無視されて陰口を言われています。職場で孤立しています")
    assert not answered.held and answered.answer.kind == "advice" and answered.answer.action_plan
    roles = [t.role for t in engine.store.recent_turns("web:h", 50)]
    assert "consultant" in roles and roles[-1] == "bot"
    with pytest.raises(NotInQueue):
        engine.handoffs.reply("web:h", "sato", "もう一言")


def test_only_the_consultant_holding_a_conversation_acts_on_it(at_noon) -> None:
    engine = at_noon
    engine.handle("web:o", "人と話したい")
    engine.handoffs.take("web:o", "sato")
    for act in (
        lambda: engine.handoffs.take("web:o", "suzuki"),
        lambda: engine.handoffs.reply("web:o", "suzuki", "代わりに答えます"),
        lambda: engine.handoffs.hand_back("web:o", "suzuki"),
        lambda: engine.handoffs.close("web:o", "suzuki"),
    ):
        with pytest.raises(HeldByAnother) as refused:
            act()
        assert refused.value.assigned_to == "sato"
    assert [t.role for t in engine.store.recent_turns("web:o", 50)] == ["user", "bot"]  # nothing was stored
    found = handoff(engine, "web:o")
    assert found.status == "active" and found.assigned_to == "sato"
    engine.handoffs.reply("web:o", "boss", "管理者です", admin=True)  # an admin may, without taking it over
    assert handoff(engine, "web:o").assigned_to == "sato"
    engine.handoffs.close("web:o", "sato")
    assert handoff(engine, "web:o").status == "closed"


def test_safety_still_answers_while_a_consultant_holds_the_conversation(at_noon) -> None:
    engine = at_noon
    engine.handle("web:s", "人と話したい")
    engine.handoffs.take("web:s", "sato")
    crisis = engine.handle("web:s", "もう死にたい。消えてしまいたい")
    assert not crisis.held
    assert crisis.answer.kind == "escalation" and crisis.answer.escalation is not None
    assert crisis.answer.escalation.resources  # help lines
    found = handoff(engine, "web:s")
    assert found.status == "active" and found.escalation == "suicide" and found.unread == 1


def test_the_expert_chip_shows_the_advice_and_offers_a_person(at_noon) -> None:
    engine = at_noon
    engine.handle("web:e", WORRY)
    expert = engine.handle("web:e", "専門家に相談したい").answer
    assert expert.topic == "handover" and "外の力" in expert.text  # the article's expert advice, as before
    assert "直接お話しすることもできます" in expert.text and expert.follow_ups[0] == "キャリアコンサルタントと話したい"
    assert handoff(engine, "web:e") is None  # an offer, not a request
    confirmed = engine.handle("web:e", expert.follow_ups[0]).answer
    assert "おつなぎします" in confirmed.text and handoff(engine, "web:e").status == "waiting"


def test_outside_reception_hours_the_bot_says_so_honestly(engine) -> None:
    engine.handoffs.clock = lambda: SATURDAY_NIGHT
    text = engine.handle("web:n", "キャリアコンサルタントと話したい").answer.text
    assert "受付時間外" in text and "12月14日（月）10:00以降" in text


def test_the_user_can_go_back_to_the_bot(at_noon) -> None:
    engine = at_noon
    engine.handle("web:r", "人と話したい")
    back = engine.handle("web:r", "AIとの相談に戻る")
    assert not back.held and "またAIがお答えします" in back.answer.text
    assert handoff(engine, "web:r").outcome == "user_returned"
    assert engine.handle("web:r", WORRY).answer.kind == "advice"


def test_a_crisis_is_queued_on_its_own_and_the_user_is_told(at_noon) -> None:
    engine = at_noon
    crisis = engine.handle("web:c", "もう死にたい。消えてしまいたい").answer
    assert crisis.kind == "escalation"
    assert "担当のキャリアコンサルタントにも共有しました" in crisis.text
    found = handoff(engine, "web:c")
    assert found.reason == "crisis" and found.escalation == "suicide" and not found.holds_bot
    # Queued, not held: the bot keeps answering until a consultant takes it.
    assert not engine.handle("web:c", WORRY).held


def test_unsure_answers_in_a_row_queue_the_conversation(at_noon) -> None:
    engine = at_noon
    engine.handoffs.policy = engine.handoffs.policy.__class__(
        **{**engine.handoffs.policy.__dict__, "low_confidence_turns": 2}
    )
    texts = [engine.handle("web:u", m).answer for m in ("仕事がつらい", "どうしたらいいかわからない")]
    assert all(a.kind == "clarify" for a in texts)
    assert "うまくお答えできていないようなので" in texts[-1].text
    assert handoff(engine, "web:u").reason == "low_confidence"


def test_not_helpful_feedback_queues_the_conversation(at_noon) -> None:
    engine = at_noon
    engine.handle("web:f", WORRY)
    assert engine.handoffs.on_feedback("web:f", helpful=True) is None
    notice = engine.handoffs.on_feedback("web:f", helpful=False)
    assert notice is not None and "お役に立てず" in notice
    assert handoff(engine, "web:f").reason == "feedback"
    assert engine.handoffs.on_feedback("web:f", helpful=False) is None  # already queued: said once


def test_deleting_the_conversation_takes_it_off_the_queue(at_noon) -> None:
    engine = at_noon
    engine.handle("web:d", "人と話したい")
    assert engine.handle("web:d", "データを削除").deleted
    assert handoff(engine, "web:d") is None


def test_handoff_can_be_turned_off(at_noon) -> None:
    engine = at_noon
    engine.handoffs.policy = engine.handoffs.policy.__class__(**{**engine.handoffs.policy.__dict__, "enabled": False})
    answer = engine.handle("web:o", "人と話したい").answer
    assert "おつなぎします" not in answer.text
    assert handoff(engine, "web:o") is None


def test_the_safety_memory_goes_on_while_the_bot_is_held(at_noon) -> None:
    engine = at_noon
    engine.handle("web:mem", "人と話したい")
    worrying = engine.handle("web:mem", "朝起きるのがつらい")  # below a check-in, above what is remembered
    assert worrying.held
    risk = engine.store.get_state("web:mem").extra.get("risk")
    assert risk is not None and risk["age"] == 0, "what a held message said is remembered for the next ones"
    for n in (1, 2):
        assert engine.handle("web:mem", "よろしくお願いします").held
        assert engine.store.get_state("web:mem").extra["risk"]["age"] == n, "and it ages, message by message"
    assert engine.handle("web:mem", "よろしくお願いします").held
    assert "risk" not in engine.store.get_state("web:mem").extra


def test_a_retried_held_message_does_not_resend_a_later_bot_turn(at_noon) -> None:
    engine = at_noon
    cid = "line:user:Uretry"
    engine.handle(cid, "人と話したい", channel_message_id="m0")
    held = engine.handle(cid, "お返事待っています", channel_message_id="m1")
    assert held.held
    engine.handoffs.take(cid, "sato")
    engine.handoffs.hand_back(cid, "sato")  # the bot turn after m1 is the hand-back notice
    answered = engine.handle(cid, "同僚に無視されて陰口を言われています", channel_message_id="m2")
    assert not answered.held
    retried = engine.handle(cid, "お返事待っています", channel_message_id="m1")  # LINE redelivers m1
    assert retried.held and retried.answer.text == "", "nothing is sent again for a held message"
    assert engine.store.answer_to(cid, "m1") is None
    assert engine.store.answer_to(cid, "m2").id == answered.turn_id
    again = engine.handle(cid, "同僚に無視されて陰口を言われています", channel_message_id="m2")
    assert again.turn_id == answered.turn_id and again.answer.text == answered.answer.text
    assert sum(t.channel_message_id == "m1" for t in engine.store.recent_turns(cid, 50)) == 1
