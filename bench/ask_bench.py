"""`bot ask` benchmark: warm per-message latency (p50/p95) and memory, in one process like `bot ask` reading stdin.

.venv/bin/python bench/ask_bench.py [--n 60]
"""

from __future__ import annotations

import argparse
import time

from _common import ROOT, rss_mb, summary

from bot.config import Settings
from bot.dialogue.factory import build_engine
from bot.retrieval.evaluate import load_eval_set


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=60)
    args = parser.parse_args()
    start = time.perf_counter()
    services = build_engine(Settings(DATA_DIR=ROOT / "data"))
    print(f"start-up (models, index, library): {time.perf_counter() - start:.1f} s, rss {rss_mb():.0f} MB")
    messages = [r.query for r in load_eval_set(ROOT / "eval" / "retrieval.tsv")][: args.n]
    for m in messages[:5]:
        services.engine.answer_once(m)
    latencies = []
    for m in messages:
        t = time.perf_counter()
        services.engine.answer_once(m)
        latencies.append((time.perf_counter() - t) * 1000)
    print(summary("bot ask per message, warm", latencies))
    print(f"rss after {len(messages)} answers: {rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
