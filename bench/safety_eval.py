"""The safety check (rules + the learned crisis head, in tiers, with turn memory) on every labelled set, and its cost.

Sets, in the order they were written:
- `eval/safety.tsv`: the rules-era set (144 messages), rules alone and rules + head.
- `training/safety/dev/`: the dev split the head's thresholds were chosen on (dev numbers, not a blind result).
- `training/safety/dev-turns/`: two-turn conversations, through the check's risk memory.
- `eval/safety_blind.tsv` (when present): written after the head and thresholds were frozen, by writers who never saw
  the rules, the training data or each other's work.

Recall counts an escalation with the right kind or a more urgent one; check-ins are counted apart, on crisis rows and
on ordinary rows. Latency is the added cost per message of the whole check (rules + head), warm.

Run: .venv/bin/python bench/safety_eval.py [--blind PATH] [--show-errors]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path
from typing import Any

from bot.config import get_settings
from bot.safety.detector import PRIORITY, detect_crisis
from bot.safety.evaluate import SafetyRow, evaluate_tiers, load_safety_set, rows_from_training_file
from bot.safety.triage import NO_RISK, SafetyCheck, SafetyDecision, load_safety_check

ROOT = Path(__file__).resolve().parent.parent
TRAINING = ROOT / "training" / "safety"


def rules_only(text: str) -> SafetyDecision:
    signal = detect_crisis(text)
    return SafetyDecision("escalate", signal.kind, f"rule:{signal.cue}", 1.0) if signal else NO_RISK


def report(name: str, rows: list[SafetyRow], assess: Any, show_errors: bool) -> dict[str, Any]:
    result = evaluate_tiers(rows, assess)
    o = result["ordinary"]
    print(f"== {name}: {result['crisis_rows']} crisis rows, {o['rows']} ordinary rows")
    print(f"  {'kind':<18} {'rows':>4} {'recall':>7} {'exact':>6} {'+check-in':>9} {'less-urgent':>11}")
    for kind in PRIORITY:
        s = result["per_kind"][kind]
        print(
            f"  {kind:<18} {s['rows']:>4} {s['recall']:>7.3f} {s['exact']:>6} {s['checked_in']:>9} {s['less_urgent']:>11}"
        )
    print(
        f"  all crisis: recall {result['recall']:.3f} (escalated, right or more urgent kind); "
        f"with check-ins {result['recall_with_check_ins']:.3f}"
    )
    print(
        f"  ordinary: false alarms {o['false_alarms']}/{o['rows']} = {o['false_alarm_rate']:.3f}; "
        f"check-ins {o['checked_in']}/{o['rows']}"
    )
    if show_errors:
        for e in result["errors"]:
            print(f"    {e['error']:<21} {e['label']:<17} {e['tier']:<8} {e['predicted']!s:<17} {e['text'][:70]}")
    return result


def two_turns(check: SafetyCheck, path: Path, show_errors: bool) -> None:
    spread = calm = ordinary = 0
    spread_caught = spread_checked = calm_escalated = ordinary_alarm = ordinary_checked = 0
    first_alone = 0
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE) if len(r) == 4]
    for label, _tier, turn1, turn2 in rows:
        first = check.assess(turn1, None, [])
        memory = check.remember(first, None)
        second = check.assess(turn2, memory, [turn1])
        if label == "none":
            ordinary += 1
            ordinary_alarm += int(first.escalate or second.escalate)
            ordinary_checked += int(not (first.escalate or second.escalate) and (first.check_in or second.check_in))
            if show_errors and (first.tier != "none" or second.tier != "none"):
                print(f"    ordinary pair raised: {first.tier}/{second.tier}  {turn1[:30]} | {turn2[:30]}")
        elif first.escalate:
            calm += 1  # the crisis was in the first message (or the first alone was enough)
            calm_escalated += int(second.escalate and second.from_context)
        else:
            spread += 1
            first_alone += int(first.check_in)
            spread_caught += int(second.escalate)
            spread_checked += int(second.check_in and not second.escalate)
            if show_errors and not (second.escalate or second.check_in):
                print(f"    spread crisis missed: {label}  {turn1[:30]} | {turn2[:30]}")
    print(f"== two-turn conversations ({path.name}, dev)")
    print(
        f"  crisis not escalated on turn 1: {spread}; on turn 2 escalated {spread_caught}, checked in {spread_checked} "
        f"(turn 1 alone checked in: {first_alone})"
    )
    print(f"  crisis escalated on turn 1: {calm}; turn 2 escalated again only from memory: {calm_escalated}")
    print(f"  ordinary pairs: {ordinary}; an escalation on either turn {ordinary_alarm}, a check-in {ordinary_checked}")


def latency(check: SafetyCheck, texts: list[str]) -> None:
    for text in texts[:50]:
        check.assess_text(text)
    for name, fn in (("rules alone", rules_only), ("rules + head", check.assess_text)):
        samples = []
        for _ in range(3):
            for text in texts:
                start = time.perf_counter()
                fn(text)
                samples.append((time.perf_counter() - start) * 1000)
        samples.sort()
        p95 = samples[int(0.95 * len(samples)) - 1]
        print(f"== latency, {name}: p50 {statistics.median(samples):.2f} ms, p95 {p95:.2f} ms ({len(samples)} calls)")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--blind", default=str(ROOT / "eval" / "safety_blind.tsv"))
    parser.add_argument("--show-errors", action="store_true")
    args = parser.parse_args()
    check = load_safety_check(get_settings().models_dir)
    if not check.learned:
        print("no crisis head: run `bot models build`")
        return 1
    eval_rows = load_safety_set(ROOT / "eval" / "safety.tsv")
    report("eval/safety.tsv, rules alone", eval_rows, rules_only, False)
    report("eval/safety.tsv, rules + head", eval_rows, check.assess_text, args.show_errors)
    dev_rows = [r for p in sorted((TRAINING / "dev").glob("*.tsv")) for r in rows_from_training_file(p)]
    report("training dev split, rules alone", dev_rows, rules_only, False)
    report("training dev split (thresholds chosen here), rules + head", dev_rows, check.assess_text, args.show_errors)
    for path in sorted((TRAINING / "dev-turns").glob("*.tsv")):
        two_turns(check, path, args.show_errors)
    blind = Path(args.blind)
    if blind.exists():
        blind_rows = load_safety_set(blind)
        report(f"{blind.name}, rules alone", blind_rows, rules_only, False)
        report(f"{blind.name} (blind), rules + head", blind_rows, check.assess_text, args.show_errors)
    latency(check, [r.text for r in eval_rows + dev_rows])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
