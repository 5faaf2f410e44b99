"""Conversations, state, feedback, bindings, the sent-answer ledger and deletion, on both backends."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from bot.store import AlreadyBound, ConversationState, NotFound, Store
from bot.store.base import SUMMARY_MAX_CHARS
from bot.store.postgres import PostgresStore

StoreFactory = Callable[..., Store]
ANSWER = {"kind": "advice", "topic": "handover", "action_plan": [{"title": "情報収集と整理", "steps": ["顧客リスト"]}]}


def test_turns_come_back_oldest_first_and_bounded(store: Store) -> None:
    ids = [store.add_turn("c1", "user" if i % 2 == 0 else "bot", f"発言{i}") for i in range(7)]
    store.add_turn("c2", "user", "別の会話")
    assert ids == sorted(ids)

    last3 = store.recent_turns("c1", 3)
    assert [t.text for t in last3] == ["発言4", "発言5", "発言6"]
    assert [t.id for t in last3] == ids[4:]
    assert len(store.recent_turns("c1", 100)) == 7
    assert store.recent_turns("c1", 0) == []
    assert store.recent_turns("nobody", 5) == []


def test_turn_fields_round_trip(store: Store) -> None:
    before = datetime.now(UTC)
    turn_id = store.add_turn("c1", "bot", "まずは顧客リストを。", answer=ANSWER, channel_message_id="m-1")
    store.add_turn("c1", "user", "ありがとう")
    first, second = store.recent_turns("c1", 2)
    assert first.id == turn_id
    assert (first.conversation_id, first.role, first.text) == ("c1", "bot", "まずは顧客リストを。")
    assert first.answer == ANSWER
    assert first.channel_message_id == "m-1"
    assert second.answer is None and second.channel_message_id is None
    assert first.created_at.tzinfo is not None and first.created_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=5) <= first.created_at <= datetime.now(UTC) + timedelta(seconds=5)
    with pytest.raises(AttributeError):
        first.text = "changed"  # type: ignore[misc]


def test_role_is_checked(store: Store) -> None:
    with pytest.raises(ValueError, match="role"):
        store.add_turn("c1", "system", "x")  # type: ignore[arg-type]


def test_prune_keeps_the_newest(store: Store) -> None:
    for i in range(10):
        store.add_turn("c1", "user", f"t{i}")
    store.add_turn("c2", "user", "other")
    assert store.prune_turns("c1", keep=4) == 6
    assert [t.text for t in store.recent_turns("c1", 100)] == ["t6", "t7", "t8", "t9"]
    assert store.prune_turns("c1", keep=4) == 0
    assert store.prune_turns("c1", keep=10) == 0
    assert store.prune_turns("c1", keep=0) == 4
    assert store.recent_turns("c1", 10) == []
    assert len(store.recent_turns("c2", 10)) == 1
    with pytest.raises(ValueError):
        store.prune_turns("c1", keep=-1)


def test_state_round_trip_and_overwrite(store: Store) -> None:
    assert store.get_state("c1") is None
    state = ConversationState(
        topic="handover",
        article_id="handover-retired-boss",
        summary="退職した上司の顧客を引き継いだ営業。",
        pending_choices=["顧客対応", "社内調整"],
        done_steps=["情報収集と整理"],
        last_kind="clarify",
        extra={"turns": 3, "nested": {"ok": True}},
    )
    store.save_state("c1", state)
    assert store.get_state("c1") == state

    updated = state.model_copy(update={"topic": None, "pending_choices": [], "last_kind": "advice"})
    store.save_state("c1", updated)
    assert store.get_state("c1") == updated
    assert store.get_state("c2") is None


def test_summary_is_bounded() -> None:
    state = ConversationState(summary="古" * 10 + "新" * SUMMARY_MAX_CHARS)
    assert len(state.summary) == SUMMARY_MAX_CHARS
    assert set(state.summary) == {"新"}  # the most recent part is kept


def test_delete_conversation_removes_everything_of_it_and_nothing_else(store: Store) -> None:
    for cid in ("c1", "c2"):
        turn = store.add_turn(cid, "bot", "answer")
        store.add_turn(cid, "user", "question")
        store.save_state(cid, ConversationState(topic="t"))
        store.add_feedback(cid, turn, True, None)
        store.bind_conversation(cid, f"owner-{cid}")

    # 2 turns + 1 state + 1 feedback
    assert store.delete_conversation("c1") == 4
    assert store.recent_turns("c1", 10) == []
    assert store.get_state("c1") is None
    assert store.delete_conversation("c1") == 0

    assert len(store.recent_turns("c2", 10)) == 2
    assert store.get_state("c2") == ConversationState(topic="t")
    assert store.owner_of("c2") == "owner-c2"
    assert store.owner_of("c1") == "owner-c1"  # the binding is not conversation content; delete_user_data drops it


def test_delete_user_data_also_drops_inbox_and_binding(store: Store) -> None:
    for cid in ("line:U1", "line:U2"):
        store.add_turn(cid, "user", "hi")
        store.bind_conversation(cid, "owner")
        store.inbox_accept("line", f"ev-{cid}", cid, '{"text": "hi"}')
    store.inbox_accept("line", "ev-other-key", "line-key:U1", "{}")

    assert store.delete_user_data("line:U1") == 3  # turn + inbox event + binding
    assert not store.conversation_exists("line:U1")
    assert store.owner_of("line:U1") is None
    assert store.inbox_pending_count("line") == 2
    assert store.delete_user_data("line:U9", conversation_key="line-key:U1") == 1
    assert store.conversation_exists("line:U2") and store.owner_of("line:U2") == "owner"
    assert store.inbox_accept("line", "ev-line:U2", "line:U2", "{}") is False


def test_unsend_removes_only_that_message(store: Store) -> None:
    store.add_turn("c1", "user", "消したい", channel_message_id="m-1")
    store.add_turn("c1", "user", "残す", channel_message_id="m-2")
    store.add_turn("c2", "user", "他人", channel_message_id="m-1")

    assert store.delete_turn_by_channel_message_id("c1", "m-1") is True
    assert store.delete_turn_by_channel_message_id("c1", "m-1") is False
    assert store.delete_turn_by_channel_message_id("c1", "unknown") is False
    assert [t.text for t in store.recent_turns("c1", 10)] == ["残す"]
    assert [t.text for t in store.recent_turns("c2", 10)] == ["他人"]


def test_conversation_exists(store: Store) -> None:
    assert not store.conversation_exists("c1")
    store.bind_conversation("web1", "owner")  # created by the web API before its first message
    store.save_state("s1", ConversationState())
    store.add_turn("c1", "user", "hi")
    assert store.conversation_exists("c1") and store.conversation_exists("web1") and store.conversation_exists("s1")
    assert not store.conversation_exists("c2")


def test_feedback_requires_a_turn_of_that_conversation(store: Store) -> None:
    turn = store.add_turn("c1", "bot", "answer")
    other = store.add_turn("c2", "bot", "answer")
    first = store.add_feedback("c1", turn, True, None)
    second = store.add_feedback("c1", turn, False, "具体的でなかった")
    assert second > first

    with pytest.raises(NotFound):
        store.add_feedback("c1", other, True, None)
    with pytest.raises(NotFound):
        store.add_feedback("c1", 999_999, True, None)
    # Pruned history keeps its feedback (stats), but new feedback on a pruned turn is refused.
    store.prune_turns("c1", keep=0)
    with pytest.raises(NotFound):
        store.add_feedback("c1", turn, True, None)


def test_binding(store: Store) -> None:
    assert store.owner_of("web1") is None
    store.bind_conversation("web1", "hash-a")
    store.bind_conversation("web1", "hash-a")  # idempotent for the same browser
    assert store.owner_of("web1") == "hash-a"
    with pytest.raises(AlreadyBound):
        store.bind_conversation("web1", "hash-b")
    assert store.owner_of("web1") == "hash-a"


def test_binding_race_has_one_winner(store: Store, open_another: StoreFactory) -> None:
    stores = [store, open_another()]
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def bind(i: int) -> None:
        barrier.wait()
        try:
            stores[i % 2].bind_conversation("web-race", f"hash-{i}")
            outcomes.append(f"hash-{i}")
        except AlreadyBound:
            outcomes.append("lost")

    threads = [threading.Thread(target=bind, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if o != "lost"]
    assert len(winners) == 1 and store.owner_of("web-race") == winners[0]


def test_mark_sent_is_idempotent_also_under_a_race(store: Store, open_another: StoreFactory) -> None:
    assert store.was_sent("reply:ev1:0") is False
    assert store.mark_sent("reply:ev1:0") is True
    assert store.mark_sent("reply:ev1:0") is False
    assert store.was_sent("reply:ev1:0") is True

    other = open_another()
    assert other.was_sent("reply:ev1:0") is True and other.mark_sent("reply:ev1:0") is False

    stores = [store, other]
    results: dict[str, list[bool]] = defaultdict(list)
    barrier = threading.Barrier(6)

    def mark(i: int) -> None:
        barrier.wait()
        for n in range(10):
            results[f"push:{n}"].append(stores[i % 2].mark_sent(f"push:{n}"))

    threads = [threading.Thread(target=mark, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 10
    assert all(sorted(r) == [False] * 5 + [True] for r in results.values()), results


def test_a_mark_taken_back_is_gone_for_every_process(store: Store, open_another: StoreFactory) -> None:
    """A reply attempt LINE refused is taken back off the ledger: no worker may then count it as possibly sent."""
    other = open_another()
    assert store.mark_sent("line:reply-try:ev2") is True
    assert other.unmark_sent("line:reply-try:ev2") is True
    assert store.was_sent("line:reply-try:ev2") is False and other.was_sent("line:reply-try:ev2") is False
    assert store.unmark_sent("line:reply-try:ev2") is False, "nothing left to take back"
    assert store.mark_sent("line:reply-try:ev2") is True, "the next attempt marks it again"


def test_message_text_never_reaches_the_logs(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # SQL statements, with their parameters
    secret = "秘密の相談内容-7f3a"
    turn = store.add_turn("c1", "user", secret)
    store.add_feedback("c1", turn, False, secret)
    store.save_state("c1", ConversationState(summary=secret))
    store.recent_turns("c1", 5)
    store.inbox_accept("line", "e1", "c1", secret)
    for _ in range(6):
        for event in store.inbox_claim("line", "w", stale_after_seconds=0):
            store.inbox_failed(event.pk, secret, retry=True)
    assert caplog.records, "expected the store and SQLAlchemy to log something"
    assert secret not in caplog.text


def test_ping(store: Store) -> None:
    store.ping()


def test_ping_raises_when_unreachable() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:9/none")
    try:
        with pytest.raises(Exception, match=r"(?i)connect|refused"):
            store.ping()
    finally:
        store.close()
