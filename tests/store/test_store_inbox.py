"""The channel inbox on both backends: durable dedupe, ordered exclusive claims, crash recovery, bounded retries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from store_inbox_worker import Hold, run_threads

from bot.store import InboxEvent, Store
from bot.store.schema import inbox
from bot.store.sql import SQLStore

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
StoreFactory = Callable[..., Store]


def row(store: Store, pk: int) -> dict[str, object]:
    assert isinstance(store, SQLStore)
    with store.engine.connect() as conn:
        found = conn.execute(select(inbox).where(inbox.c.pk == pk)).mappings().one()
    return dict(found)


def accept(store: Store, *pairs: tuple[str, str]) -> None:
    for event_id, key in pairs:
        assert store.inbox_accept("line", event_id, key, json.dumps({"id": event_id}))


def ids(events: list[InboxEvent]) -> list[str]:
    return [e.event_id for e in events]


def test_accept_dedupes_redeliveries(store: Store, open_another: StoreFactory) -> None:
    assert store.inbox_accept("line", "ev1", "line:U1", '{"a": 1}') is True
    assert store.inbox_accept("line", "ev1", "line:U1", '{"a": 1}') is False
    # Another process's view of the same database.
    other = open_another()
    assert other.inbox_accept("line", "ev1", "line:U1", '{"a": 1}') is False
    assert other.inbox_accept("line", "ev2", "line:U1", "{}") is True
    assert store.inbox_accept("line", "ev2", "line:U1", "{}") is False
    # Event ids are only unique per source.
    assert store.inbox_accept("web", "ev1", "web:abc", "{}") is True
    assert store.inbox_pending_count("line") == 2 and store.inbox_pending_count("web") == 1

    # Still deduped once processed (the payload is dropped but the id kept).
    (event, _) = store.inbox_claim("line", "w")
    store.inbox_done(event.pk)
    assert other.inbox_accept("line", "ev1", "line:U1", '{"a": 1}') is False


def test_racing_accepts_of_one_event_have_one_winner(store: Store, open_another: StoreFactory) -> None:
    stores = [store, open_another()]
    results: dict[str, list[bool]] = defaultdict(list)
    barrier = threading.Barrier(6)

    def deliver(i: int) -> None:
        barrier.wait()
        for n in range(20):
            results[f"ev{n}"].append(stores[i % 2].inbox_accept("line", f"ev{n}", f"k{n % 3}", "{}"))

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(sorted(r) == [False] * 5 + [True] for r in results.values()), results
    assert store.inbox_pending_count("line") == 20


def test_claim_returns_events_in_acceptance_order(store: Store) -> None:
    accept(store, ("a1", "A"), ("b1", "B"), ("a2", "A"), ("b2", "B"), ("a3", "A"))
    events = store.inbox_claim("line", "w1", limit=10)
    assert ids(events) == ["a1", "b1", "a2", "b2", "a3"]
    assert [e.attempts for e in events] == [1] * 5
    assert json.loads(events[0].payload) == {"id": "a1"}
    assert events[0].accepted_at.utcoffset() is not None
    assert store.inbox_claim("line", "w1") == []
    assert store.inbox_pending_count("line") == 5  # claimed is still unfinished


def test_a_claimed_conversation_is_skipped_by_other_workers(store: Store, open_another: StoreFactory) -> None:
    other = open_another()
    accept(store, ("a1", "A"), ("b1", "B"), ("a2", "A"), ("b2", "B"), ("c1", "C"))
    first = store.inbox_claim("line", "w1", limit=2)
    assert ids(first) == ["a1", "b1"]
    # A and B belong to w1 until it finishes them; C is free.
    assert ids(other.inbox_claim("line", "w2")) == ["c1"]
    assert other.inbox_claim("line", "w2") == []
    # w1 may go on with its own conversations.
    more = store.inbox_claim("line", "w1", limit=1)
    assert ids(more) == ["a2"]
    for event in first + more:
        store.inbox_done(event.pk)
    # A is finished; B still has b2 pending but nothing claimed, so anyone may take it now.
    assert ids(other.inbox_claim("line", "w2")) == ["b2"]


def test_limit_cuts_in_order(store: Store) -> None:
    accept(store, *[(f"a{i}", "A") for i in range(5)])
    assert ids(store.inbox_claim("line", "w1", limit=2)) == ["a0", "a1"]
    assert ids(store.inbox_claim("line", "w1", limit=2)) == ["a2", "a3"]
    assert store.inbox_claim("line", "w1", limit=0) == []
    assert store.inbox_claim("line", "w2", limit=2) == []


def test_stale_claims_of_a_crashed_process_are_recovered(store: Store, store_url: str) -> None:
    accept(store, ("a1", "A"), ("b1", "B"), ("a2", "A"))
    # A real process claims, then dies without finishing anything.
    crash = (
        "import os, sys\n"
        "from bot.store import open_store\n"
        "s = open_store(sys.argv[1], migrate=False)\n"
        "print(len(s.inbox_claim('line', 'doomed', limit=2)), flush=True)\n"
        "os._exit(137)\n"
    )
    done = subprocess.run([sys.executable, "-c", crash, store_url], capture_output=True, text=True, timeout=60)
    assert done.returncode == 137, done.stderr
    assert done.stdout.strip() == "2"

    # Within the lease the events stay theirs, and their conversations are blocked (a2 waits behind a1).
    assert store.inbox_claim("line", "restarted") == []
    # Past the lease (stale_after_seconds=0 stands for "300 s later") a new worker gets them, in order.
    recovered = store.inbox_claim("line", "restarted", stale_after_seconds=0)
    assert ids(recovered) == ["a1", "b1", "a2"]
    assert [e.attempts for e in recovered] == [2, 2, 1]
    assert row(store, recovered[0].pk)["claimed_by"] == "restarted"


def test_a_live_workers_retries_are_its_own_budget_and_do_not_count_as_lost_workers(
    open_another: StoreFactory,
) -> None:
    store = open_another(max_attempts=2)
    accept(store, ("a1", "A"), ("a2", "A"))
    for attempt in range(6):  # a long outage: the worker keeps releasing the event for a retry
        (event,) = store.inbox_claim("line", "w", limit=1)
        assert (event.event_id, event.attempts) == ("a1", 1)
        store.inbox_failed(event.pk, f"LINE API 500 (attempt {attempt})", retry=True)
    # ... then the worker is lost once while holding it: the event is taken over, not abandoned
    (event,) = store.inbox_claim("line", "w", limit=1)
    (taken_over,) = store.inbox_claim("line", "w2", limit=1, stale_after_seconds=0)
    assert (taken_over.event_id, taken_over.attempts) == ("a1", 2)
    # the budget is spent: the worker gives up for good
    store.inbox_failed(taken_over.pk, "LINE API 500 for ten minutes", retry=False)
    failed = row(store, event.pk)
    assert failed["status"] == "failed" and failed["last_error"] == "LINE API 500 for ten minutes"
    assert failed["finished_at"] is not None
    # A failed event does not hold up the rest of its conversation.
    assert ids(store.inbox_claim("line", "w2")) == ["a2"]


def test_heartbeats_keep_a_live_workers_claims_and_only_its_own(store: Store, open_another: StoreFactory) -> None:
    accept(store, ("a1", "A"), ("b1", "B"))
    mine = store.inbox_claim("line", "live", limit=1)
    (lost,) = open_another().inbox_claim("line", "dead", limit=1)
    time.sleep(1.0)
    assert store.inbox_heartbeat("line", "live", [mine[0].pk, lost.pk]) == 1  # not the other worker's claim
    # 0.6 s stands for "the stale time": the live worker's claim was renewed within it, the dead one's was not
    taken = open_another().inbox_claim("line", "rescuer", stale_after_seconds=0.6)
    assert ids(taken) == ["b1"]
    assert store.inbox_heartbeat("line", "live", []) == 0


def test_failure_without_retry_is_final(store: Store) -> None:
    accept(store, ("a1", "A"))
    (event,) = store.inbox_claim("line", "w")
    store.inbox_failed(event.pk, "payload is not a LINE event", retry=False)
    assert row(store, event.pk)["status"] == "failed"
    assert store.inbox_claim("line", "w", stale_after_seconds=0) == []
    assert store.inbox_pending_count("line") == 0


def test_retry_keeps_conversation_order(store: Store, open_another: StoreFactory) -> None:
    accept(store, ("a1", "A"), ("a2", "A"))
    (first,) = store.inbox_claim("line", "w1", limit=1)
    store.inbox_failed(first.pk, "timeout", retry=True)
    # a1 is pending again: nobody may take a2 before it.
    assert ids(open_another().inbox_claim("line", "w2")) == ["a1", "a2"]


def test_a_worker_that_keeps_dying_gives_up_the_event(open_another: StoreFactory) -> None:
    store = open_another(max_attempts=2)
    accept(store, ("a1", "A"), ("a2", "A"))
    (event,) = store.inbox_claim("line", "w1", limit=1)  # attempt 1, the worker dies
    assert event.event_id == "a1"
    assert ids(store.inbox_claim("line", "w2", limit=1, stale_after_seconds=0)) == ["a1"]  # attempt 2, dies too
    # No third crash: a1 is abandoned and the conversation moves on.
    assert ids(store.inbox_claim("line", "w3", limit=1, stale_after_seconds=0)) == ["a2"]
    assert row(store, event.pk)["status"] == "failed"
    assert "abandoned" in str(row(store, event.pk)["last_error"])


def test_done_forgets_the_payload_and_purge_forgets_the_event(store: Store) -> None:
    accept(store, ("a1", "A"), ("a2", "A"))
    first, second = store.inbox_claim("line", "w")
    store.inbox_done(first.pk)
    store.inbox_failed(second.pk, "boom", retry=False)
    assert row(store, first.pk)["payload"] == "" and row(store, first.pk)["status"] == "done"
    assert store.inbox_pending_count("line") == 0
    assert store.inbox_purge("line", older_than_seconds=3600) == 0
    assert store.inbox_purge("line", older_than_seconds=0) == 2
    # done/failed for an event deleted meanwhile (delete_user_data) is harmless
    store.inbox_done(first.pk)
    store.inbox_failed(second.pk, "boom", retry=True)


def _accept_many(store: Store, keys: int, per_key: int) -> dict[str, list[str]]:
    expected: dict[str, list[str]] = defaultdict(list)
    for n in range(per_key):
        for k in range(keys):
            key, event_id = f"line:U{k}", f"ev-{k}-{n}"
            assert store.inbox_accept("line", event_id, key, "{}")
            expected[key].append(event_id)
    return expected


def _check_holds(holds: list[Hold], expected: dict[str, list[str]]) -> None:
    processed = sorted(h.event_id for h in holds)
    assert processed == sorted(e for events in expected.values() for e in events), "each event exactly once"
    by_key: dict[str, list[Hold]] = defaultdict(list)
    for hold in holds:
        by_key[hold.key].append(hold)
    for key, key_holds in by_key.items():
        # Processed in acceptance order...
        assert [h.event_id for h in sorted(key_holds, key=lambda h: h.end)] == expected[key], key
        # ...and never by two workers at once.
        for a in key_holds:
            for b in key_holds:
                if a.worker != b.worker:
                    assert a.end < b.start or b.end < a.start, f"{key}: {a} overlaps {b}"
    assert len({h.worker for h in holds}) > 1, "the race needs more than one worker doing work"


def test_concurrent_claimers_in_one_process(store: Store, store_url: str) -> None:
    expected = _accept_many(store, keys=12, per_key=12)
    holds = run_threads(store_url, "t", threads=6, stores=2)
    _check_holds(holds, expected)
    assert store.inbox_pending_count("line") == 0


def test_concurrent_claimers_in_several_processes(store: Store, store_url: str) -> None:
    expected = _accept_many(store, keys=10, per_key=12)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE / "store_inbox_worker.py"), store_url, f"p{i}", "3"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(3)
    ]
    holds = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        holds += [Hold(**json.loads(line)) for line in out.splitlines()]
    _check_holds(holds, expected)
    assert store.inbox_pending_count("line") == 0


@pytest.mark.parametrize("limit", [1, 3])
def test_two_instances_racing_for_one_conversation(store: Store, open_another: StoreFactory, limit: int) -> None:
    """The tightest race: many claimers, one conversation; only ever one holder, always the oldest events."""
    accept(store, *[(f"a{i}", "A") for i in range(30)])
    stores = [store, open_another()]
    barrier = threading.Barrier(8)
    claims: list[tuple[str, list[str]]] = []
    lock = threading.Lock()

    def claim(i: int) -> None:
        barrier.wait()
        got = stores[i % 2].inbox_claim("line", f"w{i}", limit=limit)
        with lock:
            claims.append((f"w{i}", ids(got)))

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [(w, got) for w, got in claims if got]
    assert len(winners) == 1, claims
    assert winners[0][1] == [f"a{i}" for i in range(limit)]


def test_failed_events_keep_no_message_and_forgetting_empties_a_users_finished_events(store: Store) -> None:
    key, other = "inbox:line:user:Uforget", "inbox:line:user:Ukeep"
    for event_id, k in (("e1", key), ("e2", key), ("e3", key), ("e4", other)):
        assert store.inbox_accept("line", event_id, k, json.dumps({"text": f"secret {event_id}"}))
    first, second, third = store.inbox_claim("line", "w", limit=3)[:3]
    store.inbox_done(first.pk)
    store.inbox_failed(second.pk, "push rejected", retry=False)
    assert row(store, second.pk)["payload"] == "", "failed for good: nothing retries it, the message goes"
    store.inbox_failed(third.pk, "LINE unavailable", retry=True)
    assert row(store, third.pk)["payload"], "to be retried: the message is still needed"
    assert store.inbox_forget(key) == 2
    for pk in (first.pk, second.pk):
        assert row(store, pk)["payload"] == "" and row(store, pk)["conversation_key"] != key
        assert row(store, pk)["last_error"] is None
    assert row(store, third.pk)["conversation_key"] == key, "a message still to answer is kept"
    assert not store.inbox_accept("line", "e1", key, "{}"), "the ids stay: a redelivery is still a duplicate"


def test_accepting_many_at_once_keeps_order_and_dedupes(store: Store) -> None:
    accept(store, ("e1", "A"))
    rows = [("e2", "A", "{}"), ("e1", "A", "{}"), ("e3", "B", "{}"), ("e2", "A", "{}")]
    # a redelivery of e1, and e2 twice in one group: stored once each
    assert store.inbox_accept_many("line", rows) == [True, False, True, False]
    assert ids(store.inbox_claim("line", "w")) == ["e1", "e2", "e3"]
    assert store.inbox_accept_many("line", []) == []
