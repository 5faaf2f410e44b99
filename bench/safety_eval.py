"""The crisis detector on eval/safety.tsv: recall per kind and false alarms on dev/test/all, and its speed.

Run: .venv/bin/python bench/safety_eval.py [path/to/safety.tsv]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from bot.safety.detector import PRIORITY, detect_crisis
from bot.safety.evaluate import SafetyRow, evaluate_safety, load_safety_set

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SET = ROOT / "eval" / "safety.tsv"
SPEED_ROUNDS = 50


def report(name: str, rows: list[SafetyRow]) -> None:
    result = evaluate_safety(rows)
    print(f"== {name}: {result['crisis_rows']} crisis rows, {result['none_rows']} none rows")
    print(f"  {'kind':<18} {'rows':>4} {'recall':>7} {'exact':>7}")
    for kind in PRIORITY:
        stats = result["per_kind"][kind]
        print(f"  {kind:<18} {stats['rows']:>4} {stats['recall']:>7.3f} {stats['exact']:>7.3f}")
    print(
        f"  {'all crisis':<18} {result['crisis_rows']:>4} {result['recall']:>7.3f} {result['exact_kind_accuracy']:>7.3f}"
    )
    print(f"  false alarms on none: {result['false_alarms']}/{result['none_rows']} = {result['false_alarm_rate']:.3f}")
    for miss in result["misses"]:
        print(
            f"  {miss['error']:<11} {miss['sid']} label={miss['label']} predicted={miss['predicted']} cue={miss['cue']}"
        )


def speed(rows: list[SafetyRow]) -> float:
    """Mean microseconds per message over the whole set, after one warm-up pass."""
    texts = [row.text for row in rows]
    for text in texts:
        detect_crisis(text)
    start = time.perf_counter()
    for _ in range(SPEED_ROUNDS):
        for text in texts:
            detect_crisis(text)
    return (time.perf_counter() - start) / (SPEED_ROUNDS * len(texts)) * 1e6


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SET
    if not path.exists():
        print(f"{path} not found", file=sys.stderr)
        return 1
    rows = load_safety_set(path)
    for split in ("dev", "test"):
        report(split, [row for row in rows if row.split == split])
    report("all", rows)
    print(f"== speed: {speed(rows):.1f} µs per message ({len(rows)} messages x {SPEED_ROUNDS})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
