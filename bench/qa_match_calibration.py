"""How well does a question find the Q&A item that answers it? Reads the reviewer-labelled pairs in
training/qa-match/dev.tsv (a writers' training question, the article's best Q&A item by the composer's ranking, and
yes / partly / no: does that item answer it?), recomputes the two readings the composer uses (shared idf-weighted
words and the cosine of the two questions' query embeddings) with the configured model, and prints what each pair of
thresholds would show, with the composer's own thresholds marked. Dev numbers: the thresholds were chosen here.

    .venv/bin/python bench/qa_match_calibration.py
"""

from __future__ import annotations

import csv

import numpy as np
from _common import ROOT

from bot.answer import grounded
from bot.config import Settings
from bot.dialogue.factory import build_engine
from bot.knowledge.model import Role


def main() -> None:
    services = build_engine(Settings())
    composer = services.engine.composer.grounded
    items = {
        item.title: item
        for article in composer.articles.values()
        for section in [article.section(Role.QA)]
        if section is not None
        for item in section.items
    }
    tokens = grounded.get_tokenizer().tokens
    rows: list[tuple[float, float, str]] = []
    with (ROOT / "training/qa-match/dev.tsv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            item = items.get(row["faq_question"])
            if item is None:
                continue  # the item was reworded since it was labelled
            question = grounded.read_signals(row["message"], composer.lexicon).question or row["message"]
            asked = frozenset(tokens(question))
            shared = frozenset(tokens(item.title)) & asked
            in_answer = (frozenset(tokens(item.detail)) & asked) - shared
            words = sum(composer.ranker.idf(t) for t in shared) + grounded.ANSWER_WORD_WEIGHT * sum(
                composer.ranker.idf(t) for t in in_answer
            )
            cosine = float(np.dot(composer._embed(question), composer._embed(item.title)))
            rows.append((cosine, words, row["label"]))
    print(
        f"labelled pairs: {len(rows)}  yes={sum(r[2] == 'yes' for r in rows)}  partly={sum(r[2] == 'partly' for r in rows)}"
    )
    print(f"{'same':>5} {'related':>8} {'words':>6} {'shown':>6} {'yes':>5} {'partly':>7} {'no':>4}")
    current = (grounded.SAME_QUESTION_COSINE, grounded.RELATED_QUESTION_COSINE, grounded.DIRECT_ANSWER_MIN_SCORE)
    grid = {(s, r, w) for s in (0.84, 0.88, 0.92) for r in (0.7, 0.74, 0.78, 0.82) for w in (3.0, 4.0, 6.0)}
    for same, related, min_words in sorted(grid | {current}):
        shown = [label for cosine, words, label in rows if cosine >= same or (words >= min_words and cosine >= related)]
        mark = "  <- composer" if (same, related, min_words) == current else ""
        print(
            f"{same:5.2f} {related:8.2f} {min_words:6.1f} {len(shown):6d} {shown.count('yes'):5d} "
            f"{shown.count('partly'):7d} {shown.count('no'):4d}{mark}"
        )


if __name__ == "__main__":
    main()
