"""A turn as the engine stores it: one transaction, once per channel message, one worker at a time per conversation."""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from bot.store import ConversationState, Store

StoreFactory = Callable[..., Store]
ANSWER = {"kind": "advice", "text": "まずは顧客リストを。"}


def store_turn(store: Store, cid: str, text: str, message_id: str | None) -> int:
    with store.transaction() as tx:
        tx.add_turn(cid, "user", text, channel_message_id=message_id)
        turn_id = tx.add_turn(cid, "bot", "answer", answer=ANSWER)
        tx.save_state(cid, ConversationState(summary=text))
        tx.prune_turns(cid, 20)
    return turn_id


def test_a_turn_that_fails_midway_stores_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.add_turn("c1", "user", "引き継ぎが大変", channel_message_id="m-1")
        tx.save_state("c1", ConversationState(summary="引き継ぎ"))
        raise RuntimeError("the answer could not be composed")
    assert store.recent_turns("c1", 10) == []
    assert store.get_state("c1") is None
    # so the retry stores the message once
    answer_id = store_turn(store, "c1", "引き継ぎが大変", "m-1")
    assert [t.role for t in store.recent_turns("c1", 10)] == ["user", "bot"]
    assert store.answer_to("c1", "m-1") is not None and store.answer_to("c1", "m-1").id == answer_id  # type: ignore[union-attr]


def test_a_channel_message_is_stored_once(store: Store) -> None:
    store_turn(store, "c1", "一回目", "m-1")
    with pytest.raises(IntegrityError):
        store_turn(store, "c1", "一回目", "m-1")
    assert [t.text for t in store.recent_turns("c1", 10)] == ["一回目", "answer"]
    # the same id in another conversation, and messages without an id, are different messages
    store_turn(store, "c2", "別の人", "m-1")
    store_turn(store, "c1", "web", None)
    store_turn(store, "c1", "web", None)
    assert len(store.recent_turns("c1", 10)) == 6


def test_answer_to_finds_the_answer_of_that_message_only(store: Store) -> None:
    assert store.answer_to("c1", "m-1") is None
    first = store_turn(store, "c1", "一回目", "m-1")
    second = store_turn(store, "c1", "二回目", "m-2")
    found_first, found_second = store.answer_to("c1", "m-1"), store.answer_to("c1", "m-2")
    assert found_first is not None and (found_first.id, found_first.answer) == (first, ANSWER)
    assert found_second is not None and found_second.id == second
    assert store.answer_to("c2", "m-1") is None
    store.add_turn("c3", "user", "答えの前に落ちた", channel_message_id="m-3")  # stored by the old, split save
    assert store.answer_to("c3", "m-3") is None


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_the_conversation_lock_excludes_other_workers(store: Store, open_another: StoreFactory, store_url: str) -> None:
    other = open_another()
    order: list[str] = []
    holding = threading.Event()
    release = threading.Event()

    def first_worker() -> None:
        with store.conversation_lock("web:abc"):
            order.append("first in")
            holding.set()
            release.wait(10)
            order.append("first out")

    def second_worker() -> None:
        with other.conversation_lock("web:abc"):
            order.append("second in")

    first = threading.Thread(target=first_worker)
    first.start()
    assert holding.wait(10)
    second = threading.Thread(target=second_worker)
    second.start()
    _wait_for_lock_waiters(store_url, 1)
    with other.conversation_lock("web:other"):  # another conversation is not held up
        order.append("other conversation")
    release.set()
    first.join(10)
    second.join(10)
    assert order == ["first in", "other conversation", "first out", "second in"]


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_dead_workers_lock_is_released_with_its_connection(
    store: Store, open_another: StoreFactory, store_url: str
) -> None:
    lock = open_another().conversation_lock("web:abc")
    lock.__enter__()  # and never left: the worker is killed while it holds the lock
    with psycopg.connect(_conninfo(store_url), autocommit=True) as conn:
        # what PostgreSQL does when a worker is killed: its session ends
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted")
    entered = threading.Event()

    def take() -> None:
        with store.conversation_lock("web:abc"):
            entered.set()

    threading.Thread(target=take, daemon=True).start()
    assert entered.wait(10)


def _conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _wait_for_lock_waiters(url: str, count: int) -> None:
    with psycopg.connect(_conninfo(url), autocommit=True) as conn:
        for _ in range(500):
            waiting = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            row = waiting.fetchone()
            if row is not None and row[0] >= count:
                return
            threading.Event().wait(0.02)
    raise AssertionError(f"expected {count} worker(s) waiting for the conversation lock")
