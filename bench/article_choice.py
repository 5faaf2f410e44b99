"""The choice among a topic's articles (its situations): accuracy on eval/article_choice.tsv (dev) for article-head
weights, the search alone at weight 0.

    .venv/bin/python bench/article_choice.py [--weights 0 0.25 0.5 1 2]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
from collections import Counter

from _common import ROOT

from bot.config import Settings
from bot.retrieval.evaluate import article_choice_accuracy, load_article_choice
from bot.retrieval.stack import open_searcher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0, 2.0])
    args = parser.parse_args()
    rows = load_article_choice(ROOT / "eval" / "article_choice.tsv")
    searcher = open_searcher(Settings())
    print(f"{len(rows)} dev messages; labelled articles: {dict(Counter(r.article for r in rows))}")
    for weight in args.weights:
        trial = copy.copy(searcher)
        trial.params = dataclasses.replace(searcher.params, article_head_weight=weight)
        print(f"article head weight {weight:4.2f}: within-topic accuracy {article_choice_accuracy(trial, rows):.3f}")


if __name__ == "__main__":
    main()
