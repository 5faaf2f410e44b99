"""Several workers on one database, as `bot serve` runs them behind a proxy: each test builds two engines on two
store instances (two connection pools, as two processes have) over the same real PostgreSQL database, plus the
single-process SQLite case where it applies. What a user would notice: a message answered twice, an answer lost,
a checked-off step forgotten, or data left behind after they deleted their conversation."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.dialogue.engine import ConversationGone, DialogueEngine
from bot.dialogue.factory import build_engine
from bot.store import Store

StoreFactory = Callable[..., Store]
WORRY = "営業です。前任が辞めて引き継ぎ2週間。入札の申請書類の締切に間に合わず大口を落としました"
POSTGRES_ONLY = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


@pytest.fixture
def workers(open_another: StoreFactory, app_settings, searcher) -> Iterator[list[DialogueEngine]]:
    """Two engines, each on its own store instance."""
    yield [build_engine(app_settings, store=open_another(), searcher=searcher).engine for _ in range(2)]


def test_a_retried_message_is_answered_once(workers: list[DialogueEngine], store: Store) -> None:
    first = workers[0].handle("line:U1", WORRY, channel_message_id="m-1")
    # the worker crashed before sending; the event is retried on the other worker
    again = workers[1].handle("line:U1", WORRY, channel_message_id="m-1")
    assert again.turn_id == first.turn_id and again.answer.text == first.answer.text
    assert [t.role for t in store.recent_turns("line:U1", 10)] == ["user", "bot"]
    workers[1].handle("line:U1", "ありがとう", channel_message_id="m-2")
    assert [t.role for t in store.recent_turns("line:U1", 10)] == ["user", "bot", "user", "bot"]


@POSTGRES_ONLY
def test_turns_sent_to_two_workers_are_answered_one_after_another(workers: list[DialogueEngine], store: Store) -> None:
    messages = [f"ありがとう {n}" for n in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda n: workers[n % 2].handle("web:both", messages[n]), range(8)))
    turns = store.recent_turns("web:both", 100)
    assert [t.role for t in turns] == ["user", "bot"] * 8
    assert sorted(t.text for t in turns if t.role == "user") == sorted(messages)


@POSTGRES_ONLY
def test_steps_checked_off_on_two_workers_are_all_kept(workers: list[DialogueEngine], store: Store) -> None:
    steps = [f"顧客リストを作る {n}" for n in range(16)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda n: workers[n % 2].mark_step_done("web:steps", steps[n]), range(16)))
    state = store.get_state("web:steps")
    assert state is not None and sorted(state.done_steps) == sorted(steps)


@POSTGRES_ONLY
@pytest.mark.parametrize("round_", range(6))
def test_delete_on_one_worker_while_the_other_answers_leaves_nothing(
    workers: list[DialogueEngine], store: Store, round_: int
) -> None:
    cid, owner = f"web:del{round_}", "owner-hash"
    store.bind_conversation(cid, owner)
    workers[0].handle(cid, WORRY, owner=owner)  # an earlier turn
    outcome: list[str] = []
    start = threading.Barrier(2)

    def answer() -> None:
        start.wait()
        try:
            workers[0].handle(cid, "もっと詳しく", owner=owner)
            outcome.append("answered")
        except ConversationGone:
            outcome.append("refused")

    def delete() -> None:
        start.wait()
        threading.Event().wait(random.Random(round_).uniform(0, 0.3))  # lands before, during or after the turn
        workers[1].delete_conversation(cid)

    threads = [threading.Thread(target=answer), threading.Thread(target=delete)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outcome in (["answered"], ["refused"])
    assert not store.conversation_exists(cid)
    assert store.recent_turns(cid, 10) == [] and store.get_state(cid) is None and store.owner_of(cid) is None


def test_a_turn_queued_behind_a_deletion_is_refused(workers: list[DialogueEngine], store: Store) -> None:
    store.bind_conversation("web:gone", "owner-hash")
    workers[0].handle("web:gone", WORRY, owner="owner-hash")
    workers[1].delete_conversation("web:gone")
    with pytest.raises(ConversationGone):
        workers[0].handle("web:gone", "もっと詳しく", owner="owner-hash")
    assert not store.conversation_exists("web:gone")
