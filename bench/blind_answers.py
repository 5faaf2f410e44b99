"""Answers to a blind consultation set, for reviewers, and the numbers a machine can read off them.

    .venv/bin/python bench/blind_answers.py eval/consultations_blind2.tsv --out /tmp/blind --reviewers 4

Writes `answers_rN.md` (id, message, the answer's full text; interleaved so each reviewer sees every writer) and
`auto.json`, and prints: top-1/top-3 topic agreement with the writers' labels, the share of messages asked or offered
「もしかして」 chips, confident wrong-topic answers, the median length of first answers to messages under 60 characters,
how many messages that ask a question got a direct-reply block, and the safety tiers. Reviewers' judgements
(`eval/consultations_blind2.reviews.tsv`) are summarised with `--reviews FILE`.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import Settings
from bot.dialogue.factory import build_engine
from bot.retrieval.policy import decide

SHORT = 60


def answer_all(path: Path, out: Path, reviewers: int) -> None:
    engine = build_engine(Settings()).engine
    rows = [r for r in csv.DictReader(path.open(encoding="utf-8"), delimiter="\t") if r.get("text")]
    auto: dict[str, dict[str, object]] = {}
    texts: dict[str, str] = {}
    for row in rows:
        answer = engine.answer_once(row["text"])
        retrieval = engine.searcher.search(row["text"])
        auto[row["id"]] = {
            "label": row["topic"],
            "asks": row.get("asks", ""),
            "top": retrieval.best.topic if retrieval.best else None,
            "top3": [h.topic for h in retrieval.articles[:3]],
            "action": decide(retrieval).action,
            "answer_kind": answer.kind,
            "tier": answer.safety_tier,
            "direct": answer.direct_answer is not None,
            "length": len(answer.text),
            "chars": len("".join(row["text"].split())),
        }
        texts[row["id"]] = answer.text
    out.mkdir(parents=True, exist_ok=True)
    (out / "auto.json").write_text(json.dumps(auto, ensure_ascii=False, indent=1), encoding="utf-8")
    for k in range(reviewers):
        with (out / f"answers_r{k + 1}.md").open("w", encoding="utf-8") as f:
            for row in rows[k::reviewers]:
                f.write(f"## {row['id']}\n### message\n{row['text']}\n### answer\n{texts[row['id']]}\n\n")
    n = len(auto)
    values = list(auto.values())
    top1 = sum(v["top"] == v["label"] for v in values) / n
    top3 = sum(v["label"] in v["top3"] for v in values) / n  # type: ignore[operator]
    asked = sum(v["action"] != "answer" for v in values) / n
    wrong = sum(v["action"] == "answer" and v["top"] != v["label"] for v in values) / n
    short = [int(v["length"]) for v in values if int(v["chars"]) < SHORT and v["answer_kind"] == "advice"]  # type: ignore[call-overload]
    asking = [v for v in values if v["asks"] == "yes"]
    print(f"messages {n}: top-1 {top1:.3f}, top-3 {top3:.3f}, asked or chips {asked:.3f}, confident wrong {wrong:.3f}")
    print(
        f"first answers to messages under {SHORT} characters: {len(short)}, median {statistics.median(short) if short else 0}"
    )
    print(
        f"messages that ask (writer's label): {len(asking)}, with a direct-reply block {sum(bool(v['direct']) for v in asking)}"
    )
    print("safety tiers:", {t: sum(v["tier"] == t for v in values) for t in ("none", "check-in", "escalation")})


def summarise(reviews: Path) -> None:
    rows = list(csv.DictReader(reviews.open(encoding="utf-8"), delimiter="\t"))
    n = len(rows)

    def count(key: str, value: str, among: list[dict[str, str]] = rows) -> int:
        return sum(r[key].strip() == value for r in among)

    asks = [r for r in rows if r["asks_direct"].strip() == "yes"]
    print(
        f"reviewed {n}: on the worry {count('topic_fit', 'yes')}, partly {count('topic_fit', 'partly')}, "
        f"off {count('topic_fit', 'no')}; stating a fact they never gave {count('unstated_fact', 'yes') / n:.3f}"
    )
    print(
        f"asking a direct question {len(asks)}: replied first {count('direct_first', 'yes', asks)}, "
        f"partly {count('direct_first', 'partly', asks)}, not {count('direct_first', 'no', asks)}"
    )
    fit = [int(r["fit"]) for r in rows if r["fit"].strip().isdigit()]
    action = [int(r["action"]) for r in rows if r["action"].strip().isdigit()]
    print(
        f"fit {statistics.mean(fit):.2f}, action {statistics.mean(action):.2f}; safety over "
        f"{count('safety', 'over')}, under {count('safety', 'under')}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("blind", type=Path, nargs="?")
    parser.add_argument("--out", type=Path, default=Path("/tmp/blind"))
    parser.add_argument("--reviewers", type=int, default=4)
    parser.add_argument("--reviews", type=Path)
    args = parser.parse_args()
    if args.reviews:
        summarise(args.reviews)
    if args.blind:
        answer_all(args.blind, args.out, args.reviewers)


if __name__ == "__main__":
    main()
