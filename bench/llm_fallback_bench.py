"""LLM fallback benchmark: how long a worker waits in each failure mode before the grounded answer is shown.

    .venv/bin/python bench/llm_fallback_bench.py [--timeout 2.0] [--runs 5]

Drives the real `langchain-openai` client (through `LLMRewriter.from_settings`) against the test suite's local
OpenAI-compatible fake (`tests/answer/fake_openai.py`), sync `rewrite` and streamed `stream_rewrite`, and prints per
mode: the outcome (rewritten or grounded) and p50/max latency. Every failure should end at or before LLM_TIMEOUT plus
a small margin, never at the server's pace.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "answer"))

from fake_openai import FakeOpenAI  # noqa: E402
from test_llm import MESSAGE, PROMPTS, RETRIEVAL, good_reply, grounded  # noqa: E402

from bot.answer.llm import LLMRewriter  # noqa: E402
from bot.answer.model import Answer  # noqa: E402
from bot.config import Settings  # noqa: E402

MODES = ["normal", "slow", "trickle", "malformed", "error", "refusal", "refusal-field", "schema"]


def rewriter(server: FakeOpenAI, mode: str, timeout: float) -> LLMRewriter:
    settings = Settings(LLM_BASE_URL=server.base_url, LLM_MODEL=mode, LLM_TIMEOUT=timeout, PROMPTS_DIR=PROMPTS)
    return LLMRewriter.from_settings(settings)


def stream_runs(r: LLMRewriter, runs: int) -> list[tuple[float, bool]]:
    out = []
    for _ in range(runs):
        answer, final = grounded(), None
        started = time.monotonic()
        for part in r.stream_rewrite(MESSAGE, answer, RETRIEVAL):
            if isinstance(part, Answer):
                final = part
        out.append(((time.monotonic() - started) * 1000, final is answer))
    return out


def sync_runs(r: LLMRewriter, runs: int) -> list[tuple[float, bool]]:
    out = []
    for _ in range(runs):
        answer = grounded()
        started = time.monotonic()
        result = r.rewrite(MESSAGE, answer, RETRIEVAL)
        out.append(((time.monotonic() - started) * 1000, result is answer))
    return out


async def bench(args: argparse.Namespace) -> None:
    print(f"LLM_TIMEOUT={args.timeout}s, {args.runs} runs each")
    print(f"{'mode':<14} {'entry':<7} {'outcome':<18} {'p50 ms':>8} {'max ms':>8}")
    with FakeOpenAI(reply=good_reply(), slow_seconds=args.timeout * 5) as server:
        for mode in MODES:
            r = rewriter(server, mode, args.timeout)
            for entry in ("sync", "stream"):
                runs = (
                    await asyncio.to_thread(sync_runs, r, args.runs)
                    if entry == "sync"
                    else await asyncio.to_thread(stream_runs, r, args.runs)
                )
                times = [t for t, _ in runs]
                outcome = "/".join(sorted({"grounded" if fell_back else "rewritten" for _, fell_back in runs}))
                print(f"{mode:<14} {entry:<7} {outcome:<18} {statistics.median(times):>8.0f} {max(times):>8.0f}")


def main() -> None:
    # Each fallback logs a WARNING by design; the table says the same, so keep the output readable.
    logging.getLogger("bot.answer.llm").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--timeout", type=float, default=2.0, help="LLM_TIMEOUT in seconds")
    parser.add_argument("--runs", type=int, default=5, help="calls per mode and entry point")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
