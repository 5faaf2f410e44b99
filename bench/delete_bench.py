"""What deletion that deletes costs on SQLite: `secure_delete` and the WAL checkpoint after a user's deletion.

    .venv/bin/python bench/delete_bench.py [--conversations 200] [--turns 20]

Two stores on temporary files, same data: the store as shipped (secure_delete on, WAL checkpoint(TRUNCATE) after
each deletion) and the same store without either. For each it times
- a turn as the engine writes it (user turn, bot turn with its answer JSON, state, prune to 20 turns: the prune is a
  delete, so secure_delete touches every turn),
- deleting one user's data (delete_user_data),
and prints p50/p95 in milliseconds. Numbers only.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import percentile

from bot.store.base import ConversationState
from bot.store.sql import SQLStore
from bot.store.sqlite import SQLiteStore

TEXT = "退職した上司から引き継いだ顧客に、前任者と比べられて辛いです。明日どう動けばいいですか。" * 2
ANSWER = {"kind": "advice", "text": "■ 現状分析\n・" + "引き継ぎの期間が短く、" * 60}


class PlainSQLiteStore(SQLiteStore):
    """The store before issue 16: deletes only unlink rows, the WAL keeps old pages until SQLite checkpoints."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        from sqlalchemy import event

        event.listen(self.engine, "connect", lambda conn, _rec: conn.execute("PRAGMA secure_delete = OFF"))

    def delete_user_data(self, conversation_id: str, *, conversation_key: str | None = None) -> int:
        return SQLStore.delete_user_data(self, conversation_id, conversation_key=conversation_key)


def turn(store: Any, cid: str) -> None:
    store.add_turn(cid, "user", TEXT)
    store.add_turn(cid, "bot", ANSWER["text"], answer=ANSWER)
    store.save_state(cid, ConversationState(summary=TEXT))
    store.prune_turns(cid, 20)


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def run(name: str, make: Callable[[str], Any], conversations: int, turns: int) -> None:
    with tempfile.TemporaryDirectory(prefix="delete-bench-") as tmp:
        store = make(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}")
        store.upgrade()
        turn_ms: list[float] = []
        for c in range(conversations):
            for _ in range(turns):
                turn_ms.append(timed(lambda c=c: turn(store, f"web:{c}")))
        delete_ms = [timed(lambda c=c: store.delete_user_data(f"web:{c}")) for c in range(conversations)]
        wal = Path(tmp) / "bench.sqlite3-wal"
        wal_size = wal.stat().st_size if wal.exists() else 0
        store.close()
    print(
        f"{name}: turn p50 {percentile(turn_ms, 0.5):.2f} ms p95 {percentile(turn_ms, 0.95):.2f} ms; "
        f"delete p50 {percentile(delete_ms, 0.5):.2f} ms p95 {percentile(delete_ms, 0.95):.2f} ms; "
        f"WAL after the last deletion {wal_size} bytes"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--turns", type=int, default=20)
    args = parser.parse_args()
    print(f"{args.conversations} conversations x {args.turns} turns, synchronous=FULL, WAL")
    run("without secure_delete/checkpoint", PlainSQLiteStore, args.conversations, args.turns)
    run("as shipped (secure_delete + checkpoint)", SQLiteStore, args.conversations, args.turns)


if __name__ == "__main__":
    main()
