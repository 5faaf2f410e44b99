"""The consultant queue, operators, sessions and the audit log, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.store import Store
from bot.store.desk import FORGOTTEN


def _queue(store: Store, cid: str, reason: str = "user", escalation: str | None = None) -> bool:
    with store.desk() as desk:
        _, created = desk.queue(
            cid,
            reason=reason,
            topic="handover",
            summary="引き継ぎが大変",
            steps_done=2,
            escalation=escalation,  # type: ignore[arg-type]
        )
    return created


def test_a_queued_conversation_moves_through_the_tabs(store: Store) -> None:
    assert _queue(store, "line:user:U1") is True
    assert _queue(store, "web:abc", reason="crisis", escalation="suicide") is True
    with store.desk_read() as desk:
        waiting = desk.listing("waiting", "sato")
        assert [h.conversation_id for h in waiting] == ["line:user:U1", "web:abc"]  # oldest change first
        first = desk.handoff("line:user:U1")
        assert first is not None and first.channel == "line" and first.holds_bot and first.steps_done == 2
        crisis = desk.handoff("web:abc")
        assert crisis is not None and crisis.escalation == "suicide" and not crisis.holds_bot  # the bot keeps answering
        before = desk.queue_version()

    with store.desk() as desk:
        taken = desk.take("web:abc", "sato")
        assert taken is not None and taken.status == "active" and taken.holds_bot
    with store.desk_read() as desk:
        assert [h.conversation_id for h in desk.listing("mine", "sato")] == ["web:abc"]
        assert desk.listing("mine", "suzuki") == []
        assert desk.counts("sato") == {"waiting": 1, "active": 1, "mine": 1, "closed": 0}
        assert desk.queue_version() != before

    with store.desk() as desk:
        done = desk.finish("web:abc", outcome="handed_back", note="転職の話は次回")
        assert done is not None and done.status == "closed" and done.note == "転職の話は次回"
        assert desk.finish("web:abc", outcome="closed") is None  # already closed
        assert desk.take("web:abc", "sato") is None
    with store.desk_read() as desk:
        assert [h.conversation_id for h in desk.listing("closed", "sato")] == ["web:abc"]


def test_queueing_again_reopens_and_a_user_request_wins(store: Store) -> None:
    _queue(store, "web:x", reason="low_confidence")
    assert _queue(store, "web:x", reason="user") is False  # already open: updated in place
    with store.desk_read() as desk:
        found = desk.handoff("web:x")
        assert found is not None and found.reason == "user" and found.holds_bot
    with store.desk() as desk:
        desk.finish("web:x", outcome="closed")
    assert _queue(store, "web:x", reason="feedback") is True
    with store.desk_read() as desk:
        found = desk.handoff("web:x")
        assert found is not None and found.status == "waiting" and found.reason == "feedback" and found.note is None


def test_user_messages_count_as_unread_until_the_consultant_writes(store: Store) -> None:
    _queue(store, "web:u")
    with store.transaction() as tx:
        tx.add_turn("web:u", "user", "まだですか")
        tx.desk.user_wrote("web:u", escalation="mental")
        tx.desk.user_wrote("web:u")
    with store.desk_read() as desk:
        found = desk.handoff("web:u")
        assert found is not None and found.unread == 2 and found.escalation == "mental"
    with store.transaction() as tx:
        tx.add_turn("web:u", "consultant", "お待たせしました")
        tx.desk.consultant_wrote("web:u", "sato")
    with store.desk_read() as desk:
        found = desk.handoff("web:u")
        assert found is not None and found.unread == 0 and found.status == "active" and found.assigned_to == "sato"
    assert [t.role for t in store.recent_turns("web:u", 10)] == ["user", "consultant"]


def test_a_users_deletion_takes_the_conversation_off_the_console(store: Store) -> None:
    _queue(store, "line:user:U9")
    with store.desk() as desk:
        desk.audit("sato", "open", "line:user:U9")
        desk.log_message("line:user:U9", "advice", topic="handover")
    store.add_turn("line:user:U9", "user", "相談です")
    store.delete_user_data("line:user:U9")
    with store.desk_read() as desk:
        assert desk.handoff("line:user:U9") is None
        assert desk.listing("waiting", "sato") == []
        trail = desk.audit_entries()
        assert [(e.operator, e.action, e.conversation_id) for e in trail] == [("sato", "open", FORGOTTEN)]
        assert desk.message_rows(datetime.now(UTC) - timedelta(days=1)) == []


def test_operators_sessions_and_lockout(store: Store) -> None:
    with store.desk() as desk:
        assert desk.add_operator("sato", "hash", "consultant") is True
        assert desk.add_operator("sato", "other", "admin") is False
    with store.desk_read() as desk:
        sato = desk.operator("sato")
    assert sato is not None and sato.role == "consultant" and not sato.disabled
    expires = datetime.now(UTC) + timedelta(hours=1)
    with store.desk() as desk:
        desk.create_session("t1", sato.id, "csrf1", expires)
        desk.create_session("old", sato.id, "csrf0", datetime.now(UTC) - timedelta(seconds=1))
    with store.desk_read() as desk:
        found = desk.session("t1")
        assert found is not None and found[0].username == "sato" and found[1] == "csrf1"
        assert desk.session("old") is None  # expired

    with store.desk() as desk:
        assert desk.login_failed(sato.id, lock_after=3, lock_for=timedelta(minutes=5)) is None
        assert desk.login_failed(sato.id, lock_after=3, lock_for=timedelta(minutes=5)) is None
        until = desk.login_failed(sato.id, lock_after=3, lock_for=timedelta(minutes=5))
    assert until is not None and until > datetime.now(UTC)
    with store.desk_read() as desk:
        locked = desk.operator("sato")
        assert locked is not None and locked.locked(datetime.now(UTC))
        found = desk.session("t1")  # a lockout stops new sign-ins; someone guessing cannot sign the operator out
        assert found is not None and found[0].username == "sato"

    with store.desk() as desk:
        desk.login_succeeded(sato.id)
        desk.create_session("t2", sato.id, "csrf2", expires)
        assert desk.set_disabled("sato", True) is True
        assert desk.set_disabled("nobody", True) is False
    with store.desk_read() as desk:
        assert desk.session("t2") is None  # disabling ends the sessions


def test_unsure_messages_are_read_through_the_message_log(store: Store) -> None:
    with store.transaction() as tx:
        turn = tx.add_turn("web:g", "user", "副業の確定申告ってどうすれば")
        tx.desk.log_message("web:g", "unsure", user_turn_id=turn)
        other = tx.add_turn("web:g", "user", "ありがとう")
        tx.desk.log_message("web:g", "clarify", user_turn_id=other)
    with store.desk_read() as desk:
        assert desk.unsure_messages(datetime.now(UTC) - timedelta(days=1)) == ["副業の確定申告ってどうすれば"]


def test_one_consultant_never_takes_or_acts_on_anothers_conversation(store: Store) -> None:
    _queue(store, "web:own")
    with store.desk() as desk:
        assert desk.take("web:own", "sato") is not None
        assert desk.take("web:own", "suzuki") is None  # sato holds it: no take-over
        assert desk.take("web:own", "sato") is not None  # taking one's own again is fine
    with store.transaction() as tx:
        assert tx.desk.consultant_wrote("web:own", "suzuki") is False
        assert tx.desk.finish("web:own", outcome="closed", operator="suzuki") is None
    with store.desk_read() as desk:
        found = desk.handoff("web:own")
        assert found is not None and found.status == "active" and found.assigned_to == "sato"

    with store.transaction() as tx:  # an admin writes on it without taking it over
        assert tx.desk.consultant_wrote("web:own", "boss", admin=True) is True
    with store.desk_read() as desk:
        found = desk.handoff("web:own")
        assert found is not None and found.assigned_to == "sato"
    with store.desk() as desk:
        assert desk.finish("web:own", outcome="closed", operator="sato") is not None

    _queue(store, "web:wait")  # a waiting one: whoever acts first claims it
    with store.transaction() as tx:
        assert tx.desk.consultant_wrote("web:wait", "suzuki") is True
    with store.desk_read() as desk:
        found = desk.handoff("web:wait")
        assert found is not None and found.assigned_to == "suzuki" and found.status == "active"
    with store.desk() as desk:
        assert desk.take("web:wait", "sato") is None
        assert desk.finish("web:wait", outcome="closed", operator="boss", admin=True) is not None
        found = desk.handoff("web:wait")
        assert found is not None and found.assigned_to == "suzuki"  # the holder stays on record

    _queue(store, "web:close")  # closing a waiting one claims it for the record
    with store.desk() as desk:
        done = desk.finish("web:close", outcome="closed", operator="sato")
        assert done is not None and done.assigned_to == "sato"


def test_the_stored_answer_of_a_held_message_is_none_not_a_later_bot_turn(store: Store) -> None:
    with store.transaction() as tx:
        held = tx.add_turn("line:user:Uh", "user", "お返事待っています", channel_message_id="m1")
        tx.desk.log_message("line:user:Uh", "held", user_turn_id=held)
    notice = store.add_turn("line:user:Uh", "bot", "またAIがお答えします", answer={"kind": "plain"})
    with store.transaction() as tx:
        tx.add_turn("line:user:Uh", "user", "同僚に無視されています", channel_message_id="m2")
        answered = tx.add_turn("line:user:Uh", "bot", "それはつらいですね", answer={"kind": "advice"})
    assert notice < answered
    with store.transaction() as tx:  # a consultant's reply committed between a message and its answer
        tx.add_turn("line:user:Uh", "user", "それと残業のことも", channel_message_id="m3")
        tx.add_turn("line:user:Uh", "consultant", "担当の佐藤です")
        later = tx.add_turn("line:user:Uh", "bot", "残業についてですね", answer={"kind": "advice"})
    found_later = store.answer_to("line:user:Uh", "m3")
    assert found_later is not None and found_later.id == later
    assert store.answer_to("line:user:Uh", "m1") is None  # not the hand-back notice, not the later answer
    found = store.answer_to("line:user:Uh", "m2")
    assert found is not None and found.id == answered
